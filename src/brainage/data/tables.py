"""The plain-table reader (CSV/TSV with a path column) and helpers every reader shares.

A plain table has one row per scan: a ``path`` column (absolute, or relative to the
table's folder) and any of ``participant_id``, ``session``, ``run``, ``age``, ``sex``,
``site``, ``group``; other columns are kept. A cohort written by
:meth:`~brainage.data.cohort.Cohort.to_tsv` is such a table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from brainage.data.cohort import COLUMNS, bids_label
from brainage.data.table_values import is_missing, name_rows, parse_labels
from brainage.data.validate import ROW, WHERE
from brainage.errors import BrainAgeError, Problem
from brainage.io import TableError, read_table

#: Accepted column names (case-insensitive), first match wins; the key is the cohort name.
ALIASES: dict[str, tuple[str, ...]] = {
    "participant_id": ("participant_id", "subject_id", "subject", "id"),
    "session": ("session", "session_id"),
    "run": ("run",),
    "path": ("path", "image", "file", "filename"),
    "age": ("age",),
    "sex": ("sex", "gender"),
    "site": ("site",),
    "group": ("group",),
}
_NIFTI_SUFFIX = re.compile(r"(\.nii(\.gz)?|\.npy)$")


@dataclass
class RawCohort:
    """Rows read from a source, before cohort-level validation.

    Attributes:
        table: Cohort columns (values parsed) plus the provenance columns WHERE and ROW.
        problems: Problems found while reading.
        notes: Facts worth telling the user that are not errors.
        paths_listed: Image paths were written in a table (image problems name its rows).
        row_per_scan: Each table row describes one scan (duplicates name its rows).
        images_checked: The reader already checked the images.
        warnings: Things a run carries on with but should say (participants kept with
            unknown age, subject folders left out).
        unscanned: Participants listed in a table (participants.tsv) without any scan:
            problems for ``cohort check``, one warning for commands that carry on.
    """

    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paths_listed: bool = False
    row_per_scan: bool = False
    images_checked: bool = False
    warnings: list[str] = field(default_factory=list)
    unscanned: list[Problem] = field(default_factory=list)


def empty_table() -> pd.DataFrame:
    """A table with the cohort and provenance columns and no rows."""
    return pd.DataFrame(columns=[*COLUMNS, WHERE, ROW])


def read_user_table(path: Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a CSV/TSV as strings; a missing or unreadable file becomes a Problem."""
    if not path.is_file():
        return None, [Problem(str(path), expected="an existing table file",
                              fix="check the path")]
    try:
        return read_table(path), []
    except TableError as exc:  # rows with extra fields, a column named twice: each named
        return None, exc.problems
    except BrainAgeError as exc:
        return None, [Problem(str(path), fix="save the table as .tsv or .csv text (UTF-8)",
                              expected="a tab- or comma-separated table with a header row",
                              value=str(exc).removeprefix(f"{path}: "))]


def standardise_columns(df: pd.DataFrame, names: Iterable[str] | None = None) -> pd.DataFrame:
    """Rename accepted aliases (``Age``, ``subject``, ``gender``, ...) to cohort names.

    Args:
        df: Table as read.
        names: Cohort names to look for (default: all of ALIASES).
    """
    lower: dict[str, str] = {}
    for col in df.columns:
        lower.setdefault(col.lower(), col)
    rename: dict[str, str] = {}
    for name in ALIASES if names is None else names:
        aliases = ALIASES[name]
        if name in df.columns:
            continue
        for alias in aliases:
            col = lower.get(alias)
            if col is not None and col not in rename and col not in ALIASES:
                rename[col] = name
                break
    return df.rename(columns=rename)


def normalise_labels(labels: Sequence[str] | None) -> set[str] | None:
    """Participant labels without the ``sub-`` prefix; commas or spaces also separate them."""
    if not labels:
        return None
    out = {bids_label(part) for item in labels for part in re.split(r"[,\s]+", item) if part}
    return out or None


def label_mask(ids: pd.Series, labels: set[str] | None) -> pd.Series:
    """True for rows whose participant id (with or without ``sub-``) is selected."""
    if labels is None:
        return pd.Series(True, index=ids.index)
    return ids.map(lambda i: not is_missing(i) and bids_label(str(i)) in labels).astype(bool)


def unknown_labels(ids: Iterable[str], labels: set[str] | None, where: str) -> list[Problem]:
    """One Problem per selected label that matches no participant."""
    if labels is None:
        return []
    found = sorted({bids_label(str(i)) for i in ids if not is_missing(i)})
    sample = ", ".join(found[:5]) + (", ..." if len(found) > 5 else "")
    return [
        Problem(where, expected=f"a participant of this dataset ({sample or 'none found'})",
                fix="check --participant-label (labels work with or without 'sub-')",
                value=label, column="participant_id")
        for label in sorted(labels - set(found))
    ]


def id_from_path(path: str) -> str:
    """A participant id from an image name: its ``sub-<label>`` entity, else its stem."""
    name = Path(path).name
    match = re.match(r"(sub-[A-Za-z0-9]+)", name)
    return match.group(1) if match else _NIFTI_SUFFIX.sub("", name)


def _resolve_paths(df: pd.DataFrame, where: Path) -> tuple[pd.DataFrame, list[Problem]]:
    base = where.parent
    problems = name_rows([
        Problem(str(where), expected="the image path of every row",
                fix="fill in the path, or remove the row", row=int(i) + 1, column="path")
        for i in df.index[df["path"].isna()]
    ], df)
    df = df[df["path"].notna()].copy()
    base_dir = os.path.abspath(base)
    df["path"] = [os.path.normpath(os.path.join(base_dir, os.path.expanduser(str(p).strip())))
                  for p in df["path"].tolist()]
    return df, problems


def read_plain_table(
    path: str | Path, labels: set[str] | None = None, sex_codes: str | None = None
) -> RawCohort:
    """Read a CSV/TSV cohort table with one image path per row.

    Args:
        path: The table; relative image paths are resolved against its folder.
        labels: Participant labels to keep (None keeps all).
        sex_codes: Declared numeric sex convention (e.g. ``"0=female"``).
    """
    where = Path(path)
    df, problems = read_user_table(where)
    if df is None:
        return RawCohort(empty_table(), problems)
    df = standardise_columns(df)
    if "path" not in df.columns:
        return RawCohort(empty_table(), [Problem(
            str(where), expected=f"a 'path' column (found {', '.join(df.columns) or 'none'})",
            fix="add a path column: image paths, absolute or relative to the table's folder",
            column="path",
        )])
    df, problems = _resolve_paths(df, where)
    if "participant_id" not in df.columns:
        df["participant_id"] = df["path"].map(id_from_path)
    problems += [
        Problem(str(where), expected="a participant id for every row",
                fix="fill it in (or drop the column to use image file names)",
                row=int(i) + 1, column="participant_id")
        for i in df.index[df["participant_id"].isna()]
    ]
    problems += unknown_labels(df["participant_id"], labels, str(where))
    df = df[label_mask(df["participant_id"], labels)]
    df, found = parse_labels(df, str(where), sex_codes)
    df[WHERE] = str(where)
    df[ROW] = [int(i) + 1 for i in df.index]
    return RawCohort(df, problems + found, paths_listed=True, row_per_scan=True)
