"""Consistency of a prepared folder before it is opened: do its spec and its index agree?

When ``preprocessing_spec.json`` is replaced (or ``index.tsv`` copied from another folder),
no indexed scan carries the folder's spec hash, and opening the folder used to report
"no scan was prepared successfully" as if every scan had failed. :func:`spec_index_problem`
says what is really wrong. (``brainage.data.prepared.open_prepared`` should call it too.)
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from brainage.io import read_table


def spec_index_problem(root: str | Path) -> str | None:
    """A message when the finished scans of `root` were all made with another spec, else None."""
    from brainage.preprocessing.cache import INDEX_FILE
    from brainage.preprocessing.spec import SPEC_FILE, PreprocessingSpec

    root = Path(root)
    if not (root / SPEC_FILE).is_file() or not (root / INDEX_FILE).is_file():
        return None
    spec = PreprocessingSpec.load(root / SPEC_FILE)
    index = read_table(root / INDEX_FILE)
    if not {"status", "spec_hash"} <= set(index.columns):
        return None
    ok = index[index["status"] == "ok"]
    if ok.empty or (ok["spec_hash"] == spec.hash).any():
        return None
    hashes = Counter(str(h)[:12] for h in ok["spec_hash"])
    listed = ", ".join(f"{n} with spec {h}" for h, n in hashes.most_common())
    return (f"{root}: {INDEX_FILE} lists {len(ok)} prepared scan(s) ({listed}), but "
            f"{SPEC_FILE} is spec {spec.short_hash}: the spec file was replaced, or the index "
            "comes from another folder. Fix: restore this folder's own preprocessing_spec.json "
            "(cache/records/*.json hold the hash it must have), or prepare again into a new "
            "folder.")
