"""Rows of raw scans: what each ``path`` stands for, and ages from DICOM headers.

A cohort row's ``path`` is a NIfTI file or a DICOM folder; an optional ``dicom_series``
column names the series of a folder (default: its T1w one). When the table gives no age
or sex for a DICOM scan, the header does (PatientAge, PatientSex), and the ``age_source``
column says where each age came from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.dicom import DicomScan, scan_demographics, scan_source
from brainage.errors import BrainAgeError

#: Column saying where a row's age came from: ``table`` or ``dicom_header``.
AGE_SOURCE = "age_source"
FROM_HEADER, FROM_TABLE = "dicom_header", "table"


def row_source(row: pd.Series | dict[str, Any]) -> Path | DicomScan:
    """The scan a row stands for: its ``path``, as a :class:`DicomScan` for a DICOM folder.

    Raises:
        InputError: a ``dicom_series`` is given for a path that is not a DICOM folder.
    """
    return scan_source(row["path"], row.get("dicom_series"))


def with_header_demographics(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the ages and sexes it lacks filled from DICOM headers.

    Adds ``age_source`` (``table`` / ``dicom_header`` / missing) when a header gave an
    age. A folder whose series cannot be picked is left as it is: preprocessing the row
    then fails with the reason.
    """
    out = table.copy()
    for col in ("age", "sex"):
        if col not in out:
            out[col] = pd.NA
    out["age"] = pd.to_numeric(out["age"], errors="coerce").astype(float)
    out["sex"] = out["sex"].astype("object")
    source = pd.Series(pd.NA, index=out.index, dtype="object")
    source[out["age"].notna()] = FROM_TABLE
    for i, row in out.iterrows():
        if not (pd.isna(row["age"]) or pd.isna(row["sex"])):
            continue
        header = _demographics(row)
        if header is None:
            continue
        if pd.isna(row["age"]) and header["age"] is not None:
            out.loc[i, "age"], source[i] = header["age"], FROM_HEADER
        if pd.isna(row["sex"]) and header["sex"] is not None:
            out.loc[i, "sex"] = header["sex"]
    if (source == FROM_HEADER).any():
        out[AGE_SOURCE] = source.astype("string")
    return out


def _demographics(row: pd.Series) -> dict[str, Any] | None:
    """Header age and sex of a DICOM row; None for NIfTI rows and unusable folders."""
    try:
        source = row_source(row)
        return scan_demographics(source) if isinstance(source, DicomScan) else None
    except BrainAgeError:
        return None
