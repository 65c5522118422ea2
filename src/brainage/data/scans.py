"""Rows of raw scans: what each ``path`` stands for, and ages from DICOM headers.

A cohort row's ``path`` is a NIfTI file or a DICOM folder; an optional ``dicom_series``
column names the series of a folder (default: its T1w one). The header of a DICOM scan
gives the age and sex its row leaves empty (PatientAge, else the dates; PatientSex; see
:mod:`brainage.data.dicom_age`); an age or sex the table gives overrides the header and the
note says so. The ``age_source`` column names the rule that gave each age
(:data:`~brainage.data.dicom_age.AGE_SOURCES`) and ``age_note`` explains it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.dicom import DicomScan, scan_demographics, scan_source
from brainage.data.dicom_age import FROM_DATES, FROM_PATIENT_AGE, FROM_TABLE, NO_AGE, DicomAgeWarning
from brainage.errors import BrainAgeError

#: Column saying which rule gave a row's age: ``PatientAge``, ``dates``,
#: ``participants.tsv`` (the table given with the scans) or ``none``.
AGE_SOURCE = "age_source"
#: Column explaining it (a bare PatientAge read as years, a fallback, an override, ...).
AGE_NOTE = "age_note"
FROM_HEADER = (FROM_PATIENT_AGE, FROM_DATES)  # the rules that read the DICOM header
__all__ = ["AGE_NOTE", "AGE_SOURCE", "FROM_DATES", "FROM_HEADER", "FROM_PATIENT_AGE",
           "FROM_TABLE", "NO_AGE", "row_source", "with_header_demographics"]


def row_source(row: pd.Series | dict[str, Any]) -> Path | DicomScan:
    """The scan a row stands for: its ``path``, as a :class:`DicomScan` for a DICOM folder.

    Raises:
        InputError: a ``dicom_series`` is given for a path that is not a DICOM folder.
    """
    return scan_source(row["path"], row.get("dicom_series"))


def with_header_demographics(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with the ages and sexes it lacks filled from DICOM headers, and why.

    When any row is a DICOM folder, adds ``age_source`` (which rule gave the age) and
    ``age_note`` (what the reader noticed) for every row; a table of NIfTI scans only is
    returned with no new column. A folder whose series cannot be picked is left as it is:
    preprocessing the row then fails with the reason.

    Warns:
        DicomAgeWarning: a header's PatientAge and dates disagree by more than a year.
    """
    out = table.copy()
    for col in ("age", "sex"):
        if col not in out:
            out[col] = pd.NA
    out["age"] = pd.to_numeric(out["age"], errors="coerce").astype(float)
    out["sex"] = out["sex"].astype("object")
    sources, notes, any_dicom = [], [], False
    for i, row in out.iterrows():
        is_dicom, header, caught = _demographics(row)
        any_dicom |= is_dicom
        source, note, age, sex = _merge(row, header)
        if source in FROM_HEADER:  # a disagreement matters only when the header's age is used
            for w in caught:
                warnings.warn(w.message, stacklevel=2)
        out.loc[i, "age"], out.loc[i, "sex"] = age, sex
        sources.append(source)
        notes.append(note)
    if any_dicom:
        out[AGE_SOURCE] = pd.Series(sources, index=out.index, dtype="string")
        out[AGE_NOTE] = pd.Series(notes, index=out.index, dtype="string")
    return out


def _merge(row: pd.Series, header: dict[str, Any] | None) -> tuple[str, str | None, float, Any]:
    """``(age_source, age_note, age, sex)`` of a row: the table's values win over the header's."""
    header = header or {"age": None, "age_source": NO_AGE, "age_note": None, "sex": None}
    notes, age, sex = [], row["age"], row["sex"]
    if pd.notna(age):
        source = FROM_TABLE
        if header["age"] is not None:
            notes.append(f"participants table age {age:g} overrides the DICOM header's "
                         f"{header['age']:g} ({header['age_source']})")
    else:
        source, age = header["age_source"], header["age"] if header["age"] is not None else age
        if header["age_note"]:
            notes.append(header["age_note"])
    if pd.notna(sex):
        if header["sex"] is not None and header["sex"] != sex:
            notes.append(f"participants table sex {sex} overrides PatientSex {header['sex']}")
    elif header["sex"] is not None:
        sex = header["sex"]
    return source, "; ".join(notes) or None, age, sex


def _demographics(row: pd.Series) -> tuple[bool, dict[str, Any] | None, list[Any]]:
    """``(is a DICOM row, its header's age and sex, the warnings reading it raised)``; the
    header is None for NIfTI rows and folders whose series cannot be picked."""
    try:
        source = row_source(row)
    except BrainAgeError:
        return False, None, []
    if not isinstance(source, DicomScan):
        return False, None, []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DicomAgeWarning)
        try:
            header = scan_demographics(source)
        except BrainAgeError:
            header = None
    return True, header, [w for w in caught if issubclass(w.category, DicomAgeWarning)]
