"""The cache: one float16 ``.npy`` array per scan (memory-mappable), a record per scan, an index.

Layout under the output folder::

    preprocessing_spec.json          spec + hash; a folder holds one spec only
    index.tsv (+ .json)              one row per scan: ids, status, error, flags, spec hash
    qc.tsv (+ .json)                 QC numbers per scan (a summary table)
    cache/arrays/<scan>.npy          float16 (X, Y, Z) on the spec's grid
    cache/tissues/<scan>.npy         float16 (C, X, Y, Z) GM, WM, CSF [, logjac] (spec.tissues)
    cache/records/<scan>.json        status, error, QC, paths, seconds (written last)

A scan is finished when its record says ``ok`` with the folder's spec hash and its array
exists; reruns skip it. Files are written atomically and the record last, so an interrupted
run leaves nothing that looks finished: the next run redoes that scan. Parallel shards may
write into the same folder (each scan's files are its own); the index is rebuilt from the
records at the end of every run.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.cohort import bids_label
from brainage.data.labels import clean_label
from brainage.errors import BrainAgeError, InputError
from brainage.io import atomic_path, read_table, write_json, write_tsv
from brainage.preprocessing.qc import SUMMARY_COLUMNS, summary_row
from brainage.preprocessing.spec import SPEC_FILE, PreprocessingSpec, check_spec_compatible

INDEX_FILE = "index.tsv"
QC_FILE = "qc.tsv"
ARRAYS = Path("cache") / "arrays"
TISSUE_ARRAYS = Path("cache") / "tissues"
RECORDS = Path("cache") / "records"
INDEX_COLUMNS: tuple[str, ...] = (
    "participant_id", "session", "run", "scan", "status", "error", "flags", "spec_hash",
    "array", "preproc", "mask", "source", "tissues", "affine_det",
)
_TMP = re.compile(r"^\..+\.(tmp|old)-\d+$")


@dataclass(frozen=True)
class ScanKey:
    """Identity of one scan: participant, session and run as the cohort writes them."""

    participant_id: str
    session: str | None = None
    run: int | None = None

    @property
    def entities(self) -> list[tuple[str, str]]:
        """BIDS entities (``sub``, ``ses``, ``run``) with labels made alphanumeric."""
        out = [("sub", _clean(bids_label(self.participant_id)))]
        if self.session:
            out.append(("ses", _clean(bids_label(self.session, "ses-"))))  # labels.scan_stem
        if self.run is not None:
            out.append(("run", str(int(self.run))))
        return out

    @property
    def stem(self) -> str:
        """``sub-01[_ses-A][_run-1]``: the file-name stem of this scan's outputs."""
        return "_".join(f"{k}-{v}" for k, v in self.entities)


def _clean(label: str) -> str:
    """:func:`brainage.data.labels.clean_label`, refusing a label that cleans to nothing."""
    out = clean_label(label)
    if not out:
        raise InputError(
            f"id {label!r} has no letters or digits; expected a BIDS-like label. "
            "Fix: rename the participant or session in the cohort table."
        )
    return out


def key_of(row: pd.Series | dict[str, Any]) -> ScanKey:
    """The ScanKey of a cohort-table row (missing session/run read as absent)."""
    ses, run = row.get("session"), row.get("run")
    return ScanKey(
        str(row["participant_id"]),
        None if ses is None or pd.isna(ses) else str(ses),
        None if run is None or pd.isna(run) else int(run),
    )


class CacheStore:
    """Writer side of the cache under `root` for one spec."""

    def __init__(self, root: str | Path, spec: PreprocessingSpec) -> None:
        self.root = Path(root)
        self.spec = spec

    def prepare(self) -> None:
        """Create folders; write the spec, or refuse when the folder holds another spec."""
        spec_path = self.root / SPEC_FILE
        if spec_path.exists():
            try:
                check_spec_compatible(PreprocessingSpec.load(spec_path), self.spec,
                                      what=("existing outputs", "this run"))
            except BrainAgeError as exc:
                raise InputError(
                    f"{self.root} already holds outputs of another preprocessing spec; outputs "
                    f"of different specs are never mixed. {exc} Or write to a new folder."
                ) from exc
        else:
            self.spec.save(spec_path)
        (self.root / ARRAYS).mkdir(parents=True, exist_ok=True)
        (self.root / RECORDS).mkdir(parents=True, exist_ok=True)
        if self.spec.tissues:
            (self.root / TISSUE_ARRAYS).mkdir(parents=True, exist_ok=True)

    def array_path(self, key: ScanKey) -> Path:
        return self.root / ARRAYS / f"{key.stem}.npy"

    def record_path(self, key: ScanKey) -> Path:
        return self.root / RECORDS / f"{key.stem}.json"

    def read_record(self, key: ScanKey) -> dict[str, Any] | None:
        p = self.record_path(key)
        try:
            return json.loads(p.read_text()) if p.is_file() else None
        except (json.JSONDecodeError, OSError):
            return None

    def is_done(self, key: ScanKey) -> bool:
        """Finished earlier with this folder's spec (record ok, array present)."""
        rec = self.read_record(key)
        tissues_ok = not self.spec.tissues or (
            rec is not None and bool(rec.get("tissues"))
            and (self.root / str(rec.get("tissues"))).is_file())
        return (
            rec is not None and rec.get("status") == "ok"
            and rec.get("spec_hash") == self.spec.hash and self.array_path(key).is_file()
            and tissues_ok
        )

    def write_array(self, key: ScanKey, array: np.ndarray) -> Path:
        """Store (X, Y, Z) as the spec's cache dtype (float16), atomically."""
        path = self.array_path(key)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array, dtype=self.spec.params["cache_dtype"]))
        return path

    def write_tissues(self, key: ScanKey, maps: np.ndarray) -> Path:
        """Store (C, X, Y, Z) tissue maps as the cache dtype, atomically."""
        path = self.root / TISSUE_ARRAYS / f"{key.stem}.npy"
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(maps, dtype=self.spec.params["cache_dtype"]))
        return path

    def write_record(self, key: ScanKey, record: dict[str, Any]) -> None:
        write_json(self.record_path(key), record)

    def clean_stale(self, older_than_s: float = 3600.0) -> int:
        """Remove temporaries left by interrupted runs (older than `older_than_s`)."""
        now, removed = time.time(), 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                p = Path(dirpath) / name
                if _TMP.match(name) and now - p.stat().st_mtime > older_than_s:
                    p.unlink(missing_ok=True)
                    removed += 1
        return removed

    def records(self) -> Iterator[dict[str, Any]]:
        for p in sorted((self.root / RECORDS).glob("*.json")):
            try:
                yield json.loads(p.read_text())
            except (json.JSONDecodeError, OSError):
                continue

    def build_index(self) -> pd.DataFrame:
        """Rebuild ``index.tsv`` and ``qc.tsv`` from every record; return the index."""
        rows, qc_rows = [], []
        for rec in self.records():
            row = {c: rec.get(c) for c in INDEX_COLUMNS}
            row["flags"] = ";".join(rec.get("flags") or []) or None
            rows.append(row)
            qc_rows.append({"scan": rec.get("scan"), "status": rec.get("status"),
                            "flags": row["flags"], **summary_row(rec.get("qc") or {})})
        from brainage.preprocessing.sidecars import write_table_sidecar

        index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
        write_tsv(self.root / INDEX_FILE, index)
        cols = ["scan", "status", "flags", *SUMMARY_COLUMNS]
        write_tsv(self.root / QC_FILE, pd.DataFrame(qc_rows, columns=cols))
        write_table_sidecar(self.root / INDEX_FILE, INDEX_COLUMNS)  # BIDS: columns described
        write_table_sidecar(self.root / QC_FILE, cols)
        return index


class CacheReader:
    """Read a prepared folder: the spec, the index and memory-mapped arrays.

    Args:
        root: The output folder of ``brainage prepare``.
        expected: If given, the spec the consumer was built with; a different spec raises.
        allow_library_drift: Passed to :func:`check_spec_compatible`.
    """

    def __init__(
        self, root: str | Path, expected: PreprocessingSpec | None = None,
        allow_library_drift: bool = False,
    ) -> None:
        self.root = Path(root)
        self.spec = PreprocessingSpec.load(self.root / SPEC_FILE)
        if expected is not None:
            check_spec_compatible(expected, self.spec, allow_library_drift=allow_library_drift,
                                  what=("expected", f"cache {self.root}"))
        index_path = self.root / INDEX_FILE
        index = read_table(index_path) if index_path.is_file() else CacheStore(
            self.root, self.spec).build_index()
        index["run"] = pd.to_numeric(index["run"], errors="coerce").astype("Int64")
        self.index = index
        ok = (index["status"] == "ok") & (index["spec_hash"] == self.spec.hash)
        self.table = index[ok].reset_index(drop=True)

    @property
    def spec_hash(self) -> str:
        return self.spec.hash

    def __len__(self) -> int:
        return len(self.table)

    @property
    def failed(self) -> pd.DataFrame:
        """Rows of scans that failed, with their error."""
        return self.index[self.index["status"] != "ok"].reset_index(drop=True)

    def _row(self, key: ScanKey | str | int) -> pd.Series:
        t = self.table
        if isinstance(key, (int, np.integer)):
            return t.iloc[int(key)]
        stem = key.stem if isinstance(key, ScanKey) else str(key)
        hit = t[(t["scan"] == stem) | (t["participant_id"] == stem)]
        if len(hit) != 1:
            raise InputError(
                f"{self.root}: scan {stem!r} matches {len(hit)} finished scans; expected one. "
                "Fix: use the 'scan' column of index.tsv (e.g. sub-01_ses-A)."
            )
        return hit.iloc[0]

    def open(self, key: ScanKey | str | int) -> np.ndarray:
        """The cached (X, Y, Z) float16 array, memory-mapped read-only (no copy)."""
        return np.load(self.root / str(self._row(key)["array"]), mmap_mode="r")

    def load(self, key: ScanKey | str | int, dtype: Any = np.float32) -> np.ndarray:
        """The cached array as an in-memory copy of `dtype`."""
        return np.asarray(self.open(key), dtype=dtype)


def open_cached(path: str | Path) -> np.ndarray:
    """Memory-map one cached array file read-only: (X, Y, Z) float16."""
    return np.load(Path(path), mmap_mode="r")
