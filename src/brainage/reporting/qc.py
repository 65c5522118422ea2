"""QC tables for the report: read, normalise to one ``flags`` column, summarise.

A QC table has one row per scan with ``participant_id``, optionally ``session`` and the
flags in one of these forms (first found wins):

* a ``flags`` or ``qc_flags`` column: flag names separated by ``;``, ``,`` or ``|`` (a
  JSON-style list such as ``["a", "b"]`` works too); empty or ``n/a`` means clean;
* boolean columns (``true``/``false``, ``1``/``0``, ``yes``/``no``): each true value is a
  flag named after its column.

A ``status`` column other than ``ok`` adds the flag ``status=<value>`` (a failed scan).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.errors import BrainAgeError, InputError
from brainage.io import read_table

FLAG_COLUMNS = ("flags", "qc_flags")
_TRUE = {"true", "1", "yes", "y", "t"}
_BOOL = _TRUE | {"false", "0", "no", "n", "f"}
_SPLIT = re.compile(r"[;,|]")
#: Keys in ``run.json`` / ``model_card.json`` that may name the prepared folder.
PREPARED_KEYS = ("prepared", "prepared_dir", "prepared_path", "cache", "cache_dir", "data_dir")
#: QC tables looked for in a prepared folder, in order.
PREPARED_QC_FILES = ("qc.tsv", "qc_summary.tsv", "qc/qc.tsv", "index.tsv")


def split_flags(value: Any) -> list[str]:
    """Flag names in one cell (``"a;b"``, ``"['a', 'b']"``, NA -> ``[]``)."""
    if value is None or (not isinstance(value, list | tuple) and pd.isna(value)):
        return []
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip().strip("[]")
    parts = (p.strip().strip("'\"").strip() for p in _SPLIT.split(text))
    return [p for p in parts if p and p.lower() not in ("n/a", "none", "nan", "ok")]


def _bool_columns(df: pd.DataFrame) -> list[str]:
    skip = {"participant_id", "session", "status"}
    out = []
    for col in df.columns:
        values = df[col].dropna().astype(str).str.strip().str.lower()
        if col not in skip and len(values) and values.isin(_BOOL).all():
            out.append(col)
    return out


def normalise_qc(df: pd.DataFrame, where: str = "QC table") -> pd.DataFrame:
    """One row per scan: ``participant_id``, ``session``, ``flags`` (``;``-joined, "" clean).

    Other columns are kept after these three.

    Raises:
        BrainAgeError: no ``participant_id`` column, or no column that holds flags.
    """
    df = df.reset_index(drop=True)
    if "participant_id" not in df.columns:
        raise InputError(f"{where}: no 'participant_id' column (columns: {list(df.columns)}). "
                            "Fix: name the subject column participant_id.")
    flag_col = next((c for c in FLAG_COLUMNS if c in df.columns), None)
    bools = [] if flag_col else _bool_columns(df)
    if flag_col is None and not bools and "status" not in df.columns:
        raise InputError(
            f"{where}: no QC flags found. Expected a 'flags' or 'qc_flags' column "
            "(names separated by ';'), true/false columns, or a 'status' column.")
    flags: list[list[str]] = [split_flags(v) for v in df[flag_col]] if flag_col else [
        [c for c in bools if str(row[c]).strip().lower() in _TRUE] for _, row in df.iterrows()]
    if "status" in df.columns:
        for out, status in zip(flags, df["status"], strict=True):
            if not pd.isna(status) and str(status).strip().lower() != "ok":
                out.append(f"status={str(status).strip()}")
    rest = [c for c in df.columns if c not in ("participant_id", "session", flag_col)]
    out = pd.DataFrame({
        "participant_id": df["participant_id"].astype("string"),
        "session": df["session"].astype("string") if "session" in df else pd.NA,
        "flags": [";".join(dict.fromkeys(f)) for f in flags],
    })
    return pd.concat([out, df[rest]], axis=1)


def read_qc(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and normalise a QC table (see the module docstring).

    Raises:
        BrainAgeError: unreadable file or no flags in it.
    """
    return normalise_qc(read_table(path), where=str(path))


def qc_from_predictions(df: pd.DataFrame) -> pd.DataFrame | None:
    """QC table from a predictions table's ``qc_flags`` column (None when absent/empty)."""
    if "qc_flags" not in df.columns or not df["qc_flags"].notna().any():
        return None
    cols = [c for c in ("participant_id", "session", "qc_flags") if c in df.columns]
    return normalise_qc(df[cols].reset_index(drop=True), where="predictions")


def _candidate_dirs(root: Path, *metadata: dict[str, Any] | None) -> list[Path]:
    found: list[Path] = []

    def visit(obj: Any) -> None:
        if isinstance(obj, dict):
            for key, value in obj.items():
                if key in PREPARED_KEYS and isinstance(value, str) and value:
                    found.extend(p for p in (Path(value), root / value) if p.is_dir())
                else:
                    visit(value)

    for meta in metadata:
        visit(meta)
    return list(dict.fromkeys([root, *found]))


def find_prepared_qc(root: Path, run_info: dict[str, Any] | None,
                     model_card: dict[str, Any] | None,
                     notes: list[str]) -> tuple[pd.DataFrame, str] | None:
    """The QC table in `root` or in the prepared folder its metadata names, if readable."""
    for folder in _candidate_dirs(root, run_info, model_card):
        for name in PREPARED_QC_FILES:
            path = folder / name
            if not path.is_file():
                continue
            try:
                return read_qc(path), str(path)
            except BrainAgeError as exc:
                notes.append(f"QC table {path} not used: {str(exc).splitlines()[0]}")
    return None


def qc_summary(qc: pd.DataFrame, max_rows: int = 500) -> dict[str, Any]:
    """Counts and the flagged scans (at most `max_rows` listed) for the report."""
    flagged = qc[qc["flags"].astype(str).str.len() > 0]
    counts: dict[str, int] = {}
    for text in flagged["flags"]:
        for flag in text.split(";"):
            counts[flag] = counts.get(flag, 0) + 1
    rows = [{"participant_id": str(r.participant_id),
             "session": "" if pd.isna(r.session) else str(r.session),
             "flags": str(r.flags).replace(";", ", ")}
            for r in flagged.head(max_rows).itertuples(index=False)]
    return {"n_scans": int(len(qc)), "n_flagged": int(len(flagged)),
            "flag_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            "flagged": rows, "truncated": max(0, len(flagged) - max_rows)}
