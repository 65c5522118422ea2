"""One entry point for every cohort source: :func:`load_cohort`.

The format is detected from the source (or given):

=========  ===============================================================================
bids       folder with ``dataset_description.json`` or ``sub-*`` folders
table      ``.csv`` / ``.tsv`` file with a path column (also a cohort written by brainage)
openbhb    folder with ``train.npy`` / ``test.npy`` (flat challenge format) or with
           ``participants.tsv`` and per-subject ``.npy`` arrays; or one flat ``.npy`` file
tsan       (only when asked for) a table of id, age, sex, plus a folder of NIfTI images
=========  ===============================================================================

Every problem found while reading and validating is collected; one
:class:`~brainage.errors.ValidationError` lists them all.
"""

from __future__ import annotations

import difflib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from brainage.data.bids import read_bids
from brainage.data.cohort import Cohort
from brainage.data.openbhb import MODALITIES, read_openbhb
from brainage.data.sex import NUMERIC_CONVENTIONS
from brainage.data.tables import RawCohort, normalise_labels, read_plain_table
from brainage.data.tsan import read_tsan
from brainage.data.validate import ROW, WHERE, validate_cohort
from brainage.errors import Problem, ValidationError

FORMATS: tuple[str, ...] = ("bids", "table", "openbhb", "tsan")
_WHAT_SCANS = {"bids": "bids format: sub-<label>/[ses-<label>/]anat/*_T1w.nii[.gz]",
               "table": "table format: one row per scan", "openbhb": "openbhb format",
               "tsan": "tsan format: one row per scan"}
_LOG = logging.getLogger(__name__)


class CohortWarning(UserWarning):
    """Something about a cohort a run carries on with but the user should fix or know
    (participants without a scan, scans without a participants.tsv row)."""


@dataclass
class CohortReport:
    """A validated cohort plus notes (facts worth knowing) and warnings (worth fixing)."""

    cohort: Cohort
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _unknown(where: str, value: str, valid: Sequence[str]) -> Problem:
    close = difflib.get_close_matches(value, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return Problem(where, expected=f"one of {', '.join(valid)}",
                   fix=f"pick one of the valid values{hint}", value=value)


def _option_problems(format: str | None, sex_codes: str | None, modality: str,
                     image_dir: Path | None) -> list[Problem]:
    problems = []
    if format is not None and format not in FORMATS:
        problems.append(_unknown("format (--format)", format, FORMATS))
    if sex_codes is not None and sex_codes not in NUMERIC_CONVENTIONS:
        problems.append(_unknown("sex_codes (--sex-codes)", sex_codes, list(NUMERIC_CONVENTIONS)))
    if modality not in MODALITIES:
        problems.append(_unknown("modality (--modality)", modality, list(MODALITIES)))
    if image_dir is not None and format != "tsan":
        problems.append(Problem("image_dir (--image-dir)", expected="--format tsan with it",
                                fix="add --format tsan, or leave out --image-dir",
                                value=str(image_dir)))
    return problems


def _has_arrays(folder: Path) -> bool:
    """``.npy`` files in the folder or one level down."""
    return any(next(folder.glob(pattern), None) for pattern in ("*.npy", "*/*.npy"))


def detect_format(source: Path) -> str:
    """The format of `source` (see the module docstring).

    Raises:
        ValidationError: the source is missing or its format cannot be told.
    """
    if not source.exists():
        raise ValidationError([Problem(str(source), expected="an existing folder or table",
                                       fix="check the path")], "cohort source")
    if source.is_file():
        suffix = source.suffix.lower()
        if suffix in (".csv", ".tsv"):
            return "table"
        if suffix == ".npy":
            return "openbhb"
    elif any((source / f"{name}.npy").is_file() for name in ("train", "test")):
        return "openbhb"
    elif (source / "dataset_description.json").is_file():
        return "bids"
    elif (source / "participants.tsv").is_file() and _has_arrays(source):
        return "openbhb"
    elif any(p.is_dir() for p in source.glob("sub-*")):
        return "bids"
    raise ValidationError([Problem(
        str(source), expected="a BIDS folder, a .csv/.tsv table, or an OpenBHB folder or .npy",
        fix="pass --format (bids, table, openbhb or tsan)",
    )], "cohort source")


def _read(fmt: str, source: Path, *, labels: set[str] | None, sex_codes: str | None,
          modality: str, image_dir: Path | None, check_images: bool) -> RawCohort:
    if fmt == "bids":
        return read_bids(source, labels, sex_codes)
    if fmt == "table":
        return read_plain_table(source, labels, sex_codes)
    if fmt == "openbhb":
        return read_openbhb(source, modality=modality, labels=labels, sex_codes=sex_codes,
                            check_arrays=check_images)
    return read_tsan(source, image_dir=image_dir, labels=labels, sex_codes=sex_codes)


def read_cohort(
    source: str | Path, *, format: str | None = None,
    participant_labels: Sequence[str] | None = None, sex_codes: str | None = None,
    require_site: bool = False, check_images: bool = True, modality: str = "vbm",
    image_dir: str | Path | None = None, require_scans: bool = False,
) -> CohortReport:
    """Like :func:`load_cohort`, but returns the notes and warnings instead of logging them.

    Args:
        require_scans: A participant listed (participants.tsv) without any scan is a
            problem (``cohort check``); otherwise it is one warning (runs carry on).
        Others: as :func:`load_cohort`.
    """
    path = Path(source)
    image_dir = None if image_dir is None else Path(image_dir)
    problems = _option_problems(format, sex_codes, modality, image_dir)
    if problems:
        raise ValidationError(problems, "options")
    fmt = format or detect_format(path)
    raw = _read(fmt, path, labels=normalise_labels(participant_labels), sex_codes=sex_codes,
                modality=modality, image_dir=image_dir, check_images=check_images)
    problems = list(raw.problems) + (raw.unscanned if require_scans else [])
    warned = list(raw.warnings) + ([] if require_scans else _unscanned_warning(raw.unscanned))
    if raw.table.empty and not problems:
        problems.append(Problem(str(path), expected=f"at least one scan ({_WHAT_SCANS[fmt]})",
                                fix="check the source and --participant-label"))
    problems += validate_cohort(
        raw.table, str(path), paths_listed=raw.paths_listed, row_per_scan=raw.row_per_scan,
        require_site=require_site,
        check_files=check_images and not raw.images_checked,
    )
    if problems:
        problems.sort(key=lambda p: (p.where, p.row or 0))  # stable: file by file, row order
        raise ValidationError(problems, f"cohort {path} ({fmt})")
    cohort = Cohort(raw.table.drop(columns=[WHERE, ROW]), str(path))
    return CohortReport(cohort, list(raw.notes), warned)


def _unscanned_warning(unscanned: list[Problem], shown: int = 5) -> list[str]:
    """One warning naming the listed participants that have no scan (left out)."""
    if not unscanned:
        return []
    names = ", ".join(f"{p.participant} (row {p.row})" if p.row else str(p.participant)
                      for p in unscanned[:shown])
    more = f", ... ({len(unscanned)} in all)" if len(unscanned) > shown else ""
    return [f"{len(unscanned)} participant(s) listed in {unscanned[0].where} have no scan "
            f"(left out): {names}{more}. Fix: add the images or remove the rows "
            "(`brainage cohort check` lists each)"]


def load_cohort(
    source: str | Path, *, format: str | None = None,
    participant_labels: Sequence[str] | None = None, sex_codes: str | None = None,
    require_site: bool = False, check_images: bool = True, modality: str = "vbm",
    image_dir: str | Path | None = None,
) -> Cohort:
    """Read and validate a cohort from any supported source; the arguments, result and
    errors are those of :func:`brainage.load_cohort`, which calls this. Notes are logged at
    INFO level and warnings are issued as :class:`CohortWarning`; :func:`read_cohort`
    returns both.
    """
    report = read_cohort(
        source, format=format, participant_labels=participant_labels, sex_codes=sex_codes,
        require_site=require_site, check_images=check_images, modality=modality,
        image_dir=image_dir,
    )
    for note in report.notes:
        _LOG.info("%s: %s", source, note)
    for text in report.warnings:
        warnings.warn(f"{source}: {text}", CohortWarning, stacklevel=2)
    return report.cohort
