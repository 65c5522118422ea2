"""A prepared cohort opened for training or prediction: cache index + cohort metadata.

``brainage prepare`` writes the arrays, ``index.tsv`` and the preprocessing spec (see
:mod:`brainage.preprocessing.cache`); ages, sex, site and group come from the cohort the
scans were prepared from: ``cohort.tsv`` in the prepared folder when present, or a cohort
given explicitly (a table or BIDS folder). Scans are matched by participant, session and
run (the cache's scan stem), never by substring.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.cohort import Cohort
from brainage.errors import InputError

#: Cohort table a prepared folder may hold (written with ``Cohort.to_tsv``).
COHORT_FILE = "cohort.tsv"
METADATA = ("age", "sex", "site", "group")


@dataclass
class PreparedCohort:
    """A prepared cohort opened for training or prediction.

    Attributes:
        root: The prepared folder.
        table: Usable scans (preprocessing succeeded), one row each: participant_id,
            session, run, age, sex, site, group, ``array_path`` (absolute), ``qc_flags``.
        spec: The ``PreprocessingSpec`` the arrays were made with.
        spec_hash: Its hash.
        shape: Spatial shape of the arrays.
        failed: Scans whose preprocessing failed (never predicted).
        metadata: Where ages and sex came from (a path), or None when unknown.
    """

    root: Path
    table: pd.DataFrame
    spec: Any
    spec_hash: str
    shape: tuple[int, ...]
    failed: pd.DataFrame
    metadata: str | None = None

    def cohort(self) -> Cohort:
        """The usable scans as a Cohort (for splitting)."""
        return Cohort(self.table, str(self.root))


def is_prepared(path: str | Path) -> bool:
    """True when `path` is a folder written by ``brainage prepare``."""
    from brainage.preprocessing.cache import INDEX_FILE, RECORDS
    from brainage.preprocessing.spec import SPEC_FILE

    p = Path(path)
    return (p / SPEC_FILE).is_file() and ((p / INDEX_FILE).is_file() or (p / RECORDS).is_dir())


def open_prepared(path: str | Path | PreparedCohort,
                  cohort: Cohort | str | Path | None = None) -> PreparedCohort:
    """Open the output of ``brainage prepare`` and attach each scan's age, sex, site, group.

    Args:
        path: The prepared folder (an opened :class:`PreparedCohort` is returned as is).
        cohort: Where the metadata come from; default ``cohort.tsv`` in the folder. A
            path is read with :func:`brainage.data.sources.load_cohort`.

    Raises:
        BrainAgeError: not a prepared folder, or no scan prepared successfully.
    """
    if isinstance(path, PreparedCohort):
        return path
    from brainage.data.datasets import load_array
    from brainage.preprocessing.cache import CacheReader

    root = Path(path)
    if not is_prepared(root):
        raise InputError(f"{root}: not a prepared cohort (no preprocessing_spec.json and "
                            "index.tsv). Fix: run `brainage prepare SOURCE {root}` first.")
    problem = spec_index_problem(root)  # a replaced spec file is not "every scan failed"
    if problem:
        raise InputError(problem)
    reader = CacheReader(root)
    if reader.table.empty:
        raise InputError(f"{root}: no scan was prepared successfully. "
                         "Fix: check index.tsv (error column) and qc.tsv.")
    meta, source = _metadata(root, cohort)
    table = _attach(reader.table, meta, root)
    shape = tuple(load_array(table["array_path"].iloc[0]).shape)
    return PreparedCohort(root, table, reader.spec, reader.spec_hash, shape, reader.failed,
                          source)


def _metadata(root: Path, cohort: Cohort | str | Path | None
              ) -> tuple[pd.DataFrame | None, str | None]:
    if isinstance(cohort, Cohort):
        return cohort.table, cohort.source
    if cohort is not None:
        from brainage.data.sources import load_cohort

        return load_cohort(cohort, check_images=False).table, str(cohort)
    if (root / COHORT_FILE).is_file():
        return Cohort.from_tsv(root / COHORT_FILE).table, str(root / COHORT_FILE)
    return None, None


def _attach(index: pd.DataFrame, meta: pd.DataFrame | None, root: Path) -> pd.DataFrame:
    """Index rows + metadata matched on the scan stem (sub-X[_ses-Y][_run-N])."""
    from brainage.data.cohort import conform_table
    from brainage.preprocessing.cache import key_of

    out = index[["participant_id", "session", "run", "scan"]].copy()
    out["array_path"] = [str(root / a) for a in index["array"]]
    if "tissues" in index and index["tissues"].notna().any():  # spec.tissues
        out["tissue_path"] = [None if pd.isna(t) else str(root / t) for t in index["tissues"]]
        out["affine_det"] = pd.to_numeric(index.get("affine_det"), errors="coerce")
    out["qc_flags"] = index.get("flags", pd.NA)
    if meta is not None:
        stems = [key_of(r).stem for _, r in meta.iterrows()]
        lookup = meta.assign(scan=stems).drop_duplicates("scan").set_index("scan")
        for col in METADATA:
            if col in lookup:
                out[col] = lookup[col].reindex(out["scan"]).to_numpy()
    out["path"] = index["source"].to_numpy() if "source" in index else pd.NA
    return conform_table(out)  # standard columns typed; scan, array_path, qc_flags kept


def spec_index_problem(root: str | Path) -> str | None:
    """A message when the finished scans of `root` were all made with another spec, else None."""
    from collections import Counter

    from brainage.io import read_table
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
