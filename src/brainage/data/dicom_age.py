"""Age and sex from a DICOM header, as headers are found in the wild, with the rule that gave them.

Age rules, in order (:func:`header_age`):

1. ``PatientAge`` in any form exporters write: the Age String ``039Y`` / ``006M`` /
   ``010W`` / ``020D``, without padding (``39Y``), with a space (``039 Y``), lower case, or a
   bare number (``39``, ``39.5``), which is read as years and says so in the note;
2. when PatientAge is absent or unusable: the first usable of StudyDate, AcquisitionDate,
   SeriesDate minus PatientBirthDate (``YYYYMMDD``, or the old ``YYYY.MM.DD``);
3. neither: no age.

When PatientAge and the dates both give an age and they disagree by more than a year,
PatientAge is used and a :class:`DicomAgeWarning` is raised: anonymisers often shift birth
dates or zero them. PatientSex ``F`` / ``M`` give the sex; ``O``, blanks and anything else
are unknown (case-insensitive).

``age_source`` names the rule (:data:`AGE_SOURCES`); ``age_note`` explains anything not
plain (a bare number read as years, a fallback, a disagreement, a table overriding the
header).
"""

from __future__ import annotations

import re
import warnings
from datetime import date
from typing import Any

#: ``age_source`` values: the header's PatientAge, its dates, the participants table, none.
FROM_PATIENT_AGE, FROM_DATES, FROM_TABLE, NO_AGE = "PatientAge", "dates", "participants.tsv", "none"
AGE_SOURCES = (FROM_PATIENT_AGE, FROM_DATES, FROM_TABLE, NO_AGE)
#: Dates an age is computed from (minus PatientBirthDate), the first usable one wins.
DATE_TAGS = ("StudyDate", "AcquisitionDate", "SeriesDate")
#: PatientAge and the dates may differ by this much (years) before a warning.
DISAGREEMENT_YEARS = 1.0
#: Ages above this many years are unusable (not a person's age).
MAX_YEARS = 150.0
#: Longest PatientAge text read (an Age String has 4 characters).
_MAX_TEXT = 32
_UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}
_UNIT_WORDS = r"Y|YRS?|YEARS?|M|MOS?|MONTHS?|W|WKS?|WEEKS?|D|DAYS?"
_AGE_RE = re.compile(rf"(\d+(?:\.\d+)?)\s*({_UNIT_WORDS})?", re.I)
_EXPECTED = "nnnY, nnnM, nnnW, nnnD or a number of years"


class DicomAgeWarning(UserWarning):
    """A DICOM header's PatientAge and dates disagree (PatientAge is used)."""


def read_patient_age(value: Any) -> tuple[float | None, str | None]:
    """PatientAge in years, and a note when the form needed one; never raises.

    Returns:
        ``(years, note)``: ``("039Y")`` -> ``(39.0, None)``; ``("39")`` -> ``(39.0, "... read
        as years")``; unusable text -> ``(None, "... unusable ...")``; absent -> ``(None,
        None)``.
    """
    try:
        text = "" if value is None else str(value).strip()
    except Exception:  # an object whose str() fails is as unusable as garbage
        return None, "PatientAge unreadable"
    if not text:
        return None, None
    shown = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
    match = _AGE_RE.fullmatch(text) if len(text) <= _MAX_TEXT else None
    if match is None:
        return None, f"PatientAge {shown!r} unusable (expected {_EXPECTED})"
    number, unit = float(match.group(1)), (match.group(2) or "").upper()
    years = round(number * _UNITS[unit[0]], 4) if unit else round(number, 4)
    if years > MAX_YEARS:
        return None, f"PatientAge {shown!r} unusable ({years:g} years is over {MAX_YEARS:g})"
    if not unit:
        return years, f"PatientAge {shown!r} has no unit letter: read as {years:g} years"
    return years, None


def parse_age(value: Any) -> float | None:
    """PatientAge in years (``039Y`` -> 39.0, ``006M`` -> 0.5, ``39`` -> 39.0); None when
    absent or unusable. Never raises."""
    return read_patient_age(value)[0]


def parse_date(value: Any) -> date | None:
    """A DICOM date (``YYYYMMDD``, or ``YYYY.MM.DD``) as a date; None when missing or bad."""
    text = str(value or "").strip().replace(".", "")
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:  # 00000000, month 13, ...
        return None


def age_from_dates(birth: Any, study: Any) -> float | None:
    """Years between two DICOM dates; None when either is missing or bad, or birth is later."""
    b, s = parse_date(birth), parse_date(study)
    if b is None or s is None or s < b:
        return None
    return round((s - b).days / 365.25, 4)


def dates_age(ds: Any) -> tuple[float | None, str | None]:
    """Age from the first usable of :data:`DATE_TAGS` minus PatientBirthDate.

    Returns:
        ``(years, "StudyDate 20240102 - PatientBirthDate 19800101")``, or ``(None, None)``.
    """
    birth = ds.get("PatientBirthDate")
    if parse_date(birth) is None:
        return None, None
    for tag in DATE_TAGS:
        years = age_from_dates(birth, ds.get(tag))
        if years is not None and years <= MAX_YEARS:
            return years, f"{tag} {ds.get(tag)} - PatientBirthDate {birth}"
    return None, None


def header_age(ds: Any, where: str = "DICOM header") -> dict[str, Any]:
    """The age of a header (pydicom dataset or mapping) by the rules of this module.

    Warns:
        DicomAgeWarning: PatientAge and the dates disagree by more than a year.

    Returns:
        ``{"age": years | None, "age_source": one of AGE_SOURCES but FROM_TABLE,
        "age_note": str | None}``.
    """
    given, note = read_patient_age(ds.get("PatientAge"))
    dated, how = dates_age(ds)
    if given is not None:
        notes = [note] if note else []
        if dated is not None and abs(dated - given) > DISAGREEMENT_YEARS:
            text = (f"PatientAge {str(ds.get('PatientAge')).strip()!r} gives {given:g} years "
                    f"but {how} gives {dated:.1f}, more than {DISAGREEMENT_YEARS:g} year apart; "
                    "PatientAge used (anonymisers often shift or zero birth dates)")
            warnings.warn(f"{where}: {text}. Fix: check the age, or give it in a "
                          "participants table, which overrides the header.", DicomAgeWarning,
                          stacklevel=2)
            notes.append(text)
        return {"age": given, "age_source": FROM_PATIENT_AGE, "age_note": "; ".join(notes) or None}
    why = note or "no PatientAge"
    if dated is not None:
        return {"age": dated, "age_source": FROM_DATES, "age_note": f"{why}: age from {how}"}
    return {"age": None, "age_source": NO_AGE,
            "age_note": f"{why}, and no usable PatientBirthDate with a {'/'.join(DATE_TAGS)}"}


def header_sex(value: Any) -> tuple[str | None, str | None]:
    """PatientSex ``F``/``M`` (any case); ``O`` and blanks are unknown. Returns ``(sex, note)``,
    the note only for a value that is none of F/M/O/blank."""
    text = str(value or "").strip().upper()
    if text in ("F", "M"):
        return text, None
    if text in ("", "O"):
        return None, None
    return None, f"PatientSex {text[:_MAX_TEXT]!r} is not F/M/O: sex unknown"
