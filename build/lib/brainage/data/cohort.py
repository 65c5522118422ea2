"""The Cohort: one validated table describing every scan of a study.

Columns (one row per scan):

==============  ===========================================================
participant_id  subject id as the source writes it (BIDS: ``sub-<label>``)
session         ``ses-<label>`` or missing
run             run number (int) or missing
path            absolute path of the image (NIfTI, or ``.npy`` for OpenBHB)
age             age in years at this scan (float) or missing
sex             ``"F"``, ``"M"`` or missing
site            acquisition site or missing
group           e.g. ``control`` / ``patient`` or missing
==============  ===========================================================

Readers may add extra columns (``array_index`` for rows of a flat OpenBHB array,
``split``, ``study``, ...); they are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import InputError
from brainage.io import read_table, write_tsv

COLUMNS: tuple[str, ...] = ("participant_id", "session", "run", "path", "age", "sex", "site", "group")
KEY: tuple[str, ...] = ("participant_id", "session", "run")
_STRING_COLUMNS = ("participant_id", "session", "path", "sex", "site", "group")


@dataclass
class Cohort:
    """A table of scans plus where it came from.

    Attributes:
        table: One row per scan, columns COLUMNS first then any extras.
        source: Human-readable origin (a directory or file path).
    """

    table: pd.DataFrame
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self.table = conform_table(self.table)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def subjects(self) -> list[str]:
        """Unique participant ids, in table order."""
        return list(dict.fromkeys(self.table["participant_id"]))

    def select(self, mask: pd.Series | np.ndarray) -> Cohort:
        """Rows where `mask` is true, as a new Cohort."""
        return Cohort(self.table[np.asarray(mask, dtype=bool)].reset_index(drop=True), self.source)

    def with_age(self) -> Cohort:
        """Only the scans that have an age."""
        return self.select(self.table["age"].notna())

    def to_tsv(self, path: str | Path) -> None:
        """Write the table as TSV (``n/a`` for missing), atomically."""
        write_tsv(path, self.table)

    @classmethod
    def from_tsv(cls, path: str | Path) -> Cohort:
        """Read a table written by :meth:`to_tsv`."""
        df = read_table(path)
        missing = [c for c in ("participant_id", "path") if c not in df.columns]
        if missing:
            raise InputError(
                f"{path}: missing column(s) {missing}; expected a cohort table written by brainage. "
                "Fix: use `brainage cohort check SOURCE --write cohort.tsv` to create one."
            )
        return cls(df, str(path))

    def summary(self) -> dict[str, Any]:
        """Counts and age statistics, as plain Python values."""
        t = self.table
        ages = t["age"].dropna().astype(float)
        per_subject_age = t.dropna(subset=["age"]).drop_duplicates("participant_id")
        out: dict[str, Any] = {
            "scans": int(len(t)),
            "subjects": int(t["participant_id"].nunique()),
            "sessions": int(t[["participant_id", "session"]].drop_duplicates().shape[0]),
            "with_age": int(ages.size),
            "missing_age": int(t["age"].isna().sum()),
            "subjects_with_age": int(per_subject_age.shape[0]),
            "age_min": float(ages.min()) if ages.size else None,
            "age_max": float(ages.max()) if ages.size else None,
            "age_mean": float(ages.mean()) if ages.size else None,
            "age_sd": float(ages.std(ddof=1)) if ages.size > 1 else None,
        }
        for col in ("sex", "site", "group"):
            counts = t[col].fillna("n/a").value_counts().sort_index()
            out[f"per_{col}"] = {str(k): int(v) for k, v in counts.items()}
        return out

    def format_summary(self) -> str:
        """A short human-readable summary for the terminal."""
        s = self.summary()
        lines = [
            f"Cohort: {self.source}",
            f"  scans {s['scans']}, subjects {s['subjects']}, sessions {s['sessions']}",
            f"  age known for {s['with_age']} scan(s), missing for {s['missing_age']}",
        ]
        if s["age_min"] is not None:
            sd = "n/a" if s["age_sd"] is None else f"{s['age_sd']:.1f}"
            lines.append(
                f"  age range {s['age_min']:.1f}-{s['age_max']:.1f} y, "
                f"mean {s['age_mean']:.1f}, SD {sd}"
            )
        for col in ("sex", "site", "group"):
            counts = ", ".join(f"{k}: {v}" for k, v in s[f"per_{col}"].items())
            lines.append(f"  per {col}: {counts}")
        return "\n".join(lines)


def conform_table(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with every standard column present and typed; extras kept after them.

    Types: strings (pandas ``string`` dtype, missing = NA) for ids and labels, float for
    age, nullable int for run. Values are assumed valid; validation happens in readers.
    """
    out = df.copy()
    for col in COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    for col in _STRING_COLUMNS:
        out[col] = out[col].astype("string")
    out["age"] = pd.to_numeric(out["age"], errors="coerce").astype(float)
    out["run"] = pd.to_numeric(out["run"], errors="coerce").astype("Int64")
    extras = [c for c in out.columns if c not in COLUMNS]
    return out[list(COLUMNS) + extras].reset_index(drop=True)


def bids_label(participant_id: str, prefix: str = "sub-") -> str:
    """``"sub-01"`` -> ``"01"``; ids without the prefix are returned unchanged."""
    return participant_id[len(prefix):] if participant_id.startswith(prefix) else participant_id
