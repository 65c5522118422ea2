"""DICOM folders as scans: find the series, pick the T1w one, read age and sex (pydicom).

A scan may be given as a folder of DICOM files: one series, or a study with several (in
the folder or its subfolders). The T1-weighted series is picked by its SeriesDescription /
ProtocolName (:data:`T1_PATTERN`), or named by the user (``--dicom-series`` with a
SeriesNumber or SeriesInstanceUID; a ``dicom_series`` column in a cohort table). An
ambiguous study is refused with every series listed. Only headers are read here (no
pixel data); :mod:`brainage.data.dicom_convert` converts the picked series with dcm2niix,
and :mod:`brainage.data.dicom_age` reads age and sex as headers are found in the wild.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainage.data.dicom_age import NO_AGE, header_age, header_sex
from brainage.data.dicom_age import age_from_dates as age_from_dates  # re-exported
from brainage.data.dicom_age import parse_age as parse_age  # re-exported
from brainage.errors import InputError, NotFoundError

#: SeriesDescription / ProtocolName of a T1-weighted anatomical series.
T1_PATTERN = re.compile(r"T1(?!\d)|MP-?RAGE|MP2RAGE|SPGR|\bTFE\b|BRAVO", re.I)
#: Series never picked automatically (scouts, localisers, T1 maps, post-contrast).
SKIP_PATTERN = re.compile(r"locali[sz]er|scout|survey|\bloc\b|map\b|\bpost|gad|contrast", re.I)
#: Files examined when deciding whether a folder holds DICOM files.
_PROBE_FILES = 200
_HEADER_TAGS = ("SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ProtocolName",
                "PatientAge", "PatientSex", "PatientBirthDate", "StudyDate", "AcquisitionDate",
                "SeriesDate", "PatientID")
_MISSING = ("", "nan", "NaN", "<NA>", "None", "n/a")


@dataclass(frozen=True)
class Series:
    """One series of a DICOM folder (from its headers).

    Attributes:
        uid: SeriesInstanceUID.
        number: SeriesNumber (None when absent).
        description: SeriesDescription (may be empty).
        protocol: ProtocolName (may be empty).
        files: Its files, sorted.
    """

    uid: str
    number: int | None
    description: str
    protocol: str
    files: tuple[Path, ...]

    def label(self) -> str:
        """``#3 'T1 MPRAGE' (protocol 't1_mprage', 176 files, UID 1.2.3)``."""
        return (f"#{self.number if self.number is not None else '?'} {self.description!r} "
                f"(protocol {self.protocol!r}, {len(self.files)} files, UID {self.uid})")

    def is_t1(self) -> bool:
        """Whether its description or protocol names a T1-weighted anatomical series."""
        text = f"{self.description} {self.protocol}"
        return bool(T1_PATTERN.search(text)) and not SKIP_PATTERN.search(text)


@dataclass(frozen=True)
class DicomScan(os.PathLike[str]):
    """A DICOM folder plus the series to use; behaves as the folder's path.

    Attributes:
        folder: The folder given as the scan.
        series: SeriesNumber or SeriesInstanceUID asked for, or None (pick the T1w one).
    """

    folder: Path
    series: str | None = None

    def __fspath__(self) -> str:
        return str(self.folder)

    def __str__(self) -> str:
        return str(self.folder) + (f" (series {self.series})" if self.series else "")


def is_dicom_file(path: Path) -> bool:
    """Whether `path` starts like a DICOM Part 10 file (``DICM`` after the preamble).

    Only regular files are opened: a FIFO (or a symlink to one) would block the read.
    """
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as fobj:
            head = fobj.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _files(folder: Path) -> Iterator[Path]:
    """Every non-hidden file under `folder`, folder by folder, sorted."""
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        yield from (Path(root) / n for n in sorted(names) if not n.startswith("."))


def is_dicom_folder(path: str | Path) -> bool:
    """Whether `path` is a folder holding DICOM files (not a BIDS or prepared folder)."""
    p = Path(path)
    if not p.is_dir() or (p / "dataset_description.json").exists():
        return False
    return any(is_dicom_file(f) for f in itertools.islice(_files(p), _PROBE_FILES))


def scan_source(path: str | Path, series: str | int | None = None) -> Path | DicomScan:
    """What a scan path stands for: a :class:`DicomScan` for a DICOM folder, else the path.

    Raises:
        InputError: a series is asked for, but the path is not a DICOM folder.
    """
    p = Path(path)
    wanted = series_text(series)
    if is_dicom_folder(p):
        return DicomScan(p, wanted)
    if wanted is not None:
        raise InputError(f"{p}: a DICOM series ({series}) was asked for, but this is not a "
                         "folder of DICOM files. Fix: drop --dicom-series (or the table's "
                         "dicom_series value) for NIfTI scans.")
    return p


def series_text(series: Any) -> str | None:
    """A series choice as text: ``5``, ``5.0`` (a number read from a table) -> ``"5"``;
    None, NaN, NA and blanks -> None."""
    text = "" if series is None else str(series).strip()
    if text in _MISSING:  # None, NaN, pandas NA
        return None
    if re.fullmatch(r"\d+\.0+", text):
        text = text.split(".")[0]
    return text or None


def list_series(folder: str | Path) -> list[Series]:
    """Every series in `folder` (recursively), by SeriesNumber then UID.

    Raises:
        NotFoundError: the folder is missing or holds no readable DICOM file.
    """

    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"{root}: DICOM folder not found. Fix: check the path.")
    groups: dict[str, list[tuple[Path, Any]]] = {}
    for path in _files(root):
        if not is_dicom_file(path):
            continue
        try:
            ds = read_header(path)
        except Exception:  # damaged file: left out; conversion reports what is missing
            continue
        groups.setdefault(str(ds.get("SeriesInstanceUID") or ""), []).append((path, ds))
    if not groups:
        raise NotFoundError(f"{root}: no readable DICOM file (files with 'DICM' at byte 128). "
                            "Fix: pass the folder of the scan's DICOM files, or a NIfTI file.")
    out = [_series(uid, items) for uid, items in groups.items()]
    return sorted(out, key=lambda s: (s.number is None, s.number or 0, s.uid))


def _series(uid: str, items: list[tuple[Path, Any]]) -> Series:
    ds = items[0][1]
    return Series(uid, _header_int(ds, "SeriesNumber"), _header_text(ds, "SeriesDescription"),
                  _header_text(ds, "ProtocolName"), tuple(sorted(p for p, _ in items)))


def read_header(path: Path) -> dict[str, Any]:
    """The tags brainage reads (:data:`_HEADER_TAGS`) of one DICOM file, decoded now.

    pydicom decodes an element when it is first read, so a damaged one (an unknown VR, a
    cut value) raises there, far from the file; here it is read as absent instead.

    Raises:
        Exception: whatever pydicom raises for a file it cannot parse at all.
    """
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(_HEADER_TAGS))
    out: dict[str, Any] = {}
    for tag in _HEADER_TAGS:
        try:
            out[tag] = ds.get(tag)
        except Exception:  # undecodable element: as if absent
            out[tag] = None
    return out


def _header_int(ds: dict[str, Any], tag: str) -> int | None:
    """A whole-number header value, or None when absent or unusable (``abc``, ``1\\2``)."""
    value = ds.get(tag)
    try:
        return None if value in (None, "") else int(str(value).strip())
    except ValueError:  # text, several values (MultiValue)
        return None


def _header_text(ds: dict[str, Any], tag: str) -> str:
    """A header value as text ("" when absent)."""
    return str(ds.get(tag) or "")


def pick_series(folder: str | Path, series: str | int | None = None) -> Series:
    """The series to convert: the one asked for, the only one, or the only T1w one.

    Args:
        folder: The DICOM folder.
        series: SeriesNumber or SeriesInstanceUID, or None to pick the T1w series.

    Raises:
        InputError: the series asked for is not there or is not unique, or the study has
            no T1w series or several; the message lists every series and how to pick one.
    """
    found = list_series(folder)
    if series is not None:
        want = str(series).strip()
        hits = [s for s in found if want in (s.uid, str(s.number))]
        if len(hits) == 1:
            return hits[0]
        why = f"no series {want!r}" if not hits else f"{len(hits)} series numbered {want}"
        raise InputError(f"{folder}: {why}; expected a SeriesNumber or SeriesInstanceUID of "
                         f"one series. Series found: {_listing(found)}. Fix: "
                         f"{'use the UID' if hits else 'pick one of these'} with "
                         "--dicom-series (a table: its dicom_series column).")
    if len(found) == 1:
        return found[0]
    t1 = [s for s in found if s.is_t1()]
    if len(t1) == 1:
        return t1[0]
    why = "no series named like a T1w one" if not t1 else f"{len(t1)} T1w-like series"
    raise InputError(
        f"{folder}: {len(found)} DICOM series and {why} (SeriesDescription/ProtocolName "
        f"matching T1, MPRAGE, SPGR, TFE, ...): {_listing(found)}. Fix: pick one with "
        "--dicom-series NUMBER_OR_UID (a table: a dicom_series column), or give a folder "
        "holding only the T1w series.")


def _listing(found: list[Series]) -> str:
    return "; ".join(s.label() for s in found)


def header_demographics(files: tuple[Path, ...] | list[Path]) -> dict[str, Any]:
    """Age (years), sex (``F``/``M``) and the rule that gave the age, from the first
    readable header of a series (:mod:`brainage.data.dicom_age` has the rules).

    Warns:
        DicomAgeWarning: PatientAge and StudyDate - PatientBirthDate disagree by over a year.

    Returns:
        ``{"age": float | None, "age_source": "PatientAge" | "dates" | "none",
        "age_note": str | None, "sex": "F" | "M" | None, "patient_id": str | None}``.
    """
    for path in files:
        try:
            ds = read_header(path)
        except Exception:  # damaged file: the next one of the series
            continue
        out = header_age(ds, where=str(path.parent))
        sex, sex_note = header_sex(ds.get("PatientSex"))
        if sex_note:
            out["age_note"] = "; ".join(n for n in (out["age_note"], sex_note) if n)
        return {**out, "sex": sex, "patient_id": _header_text(ds, "PatientID") or None}
    return {"age": None, "age_source": NO_AGE, "age_note": "no readable DICOM header",
            "sex": None, "patient_id": None}


def scan_demographics(scan: DicomScan) -> dict[str, Any]:
    """Age, sex and PatientID from the header of the series `scan` stands for.

    Raises:
        BrainAgeError: the folder has no DICOM file, or no or an ambiguous T1w series.
    """
    return header_demographics(pick_series(scan.folder, scan.series).files)
