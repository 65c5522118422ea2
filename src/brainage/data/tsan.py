"""TSAN layout: folders of NIfTI images plus one table of id, age and sex.

An image belongs to id ``X`` when its name (without ``.nii``/``.nii.gz``) is ``X`` or
starts with ``X_``: ids are matched exactly, never by substring (the original code's
bug: ``sub-1`` matched ``sub-10``). Sex is coded 0 = female, 1 = male unless another
convention is declared. Ids are kept as the table writes them.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import pandas as pd

from brainage.data.table_values import parse_labels, row_number
from brainage.data.tables import (
    RawCohort,
    empty_table,
    label_mask,
    read_user_table,
    standardise_columns,
    unknown_labels,
)
from brainage.data.validate import ROW, WHERE
from brainage.errors import Problem

#: TSAN's one-hot sex input: index 0 = female, 1 = male.
DEFAULT_SEX_CODES = "0=female"
_TABLE_SUFFIXES = (".csv", ".tsv")


def _find_table(source: Path) -> tuple[Path | None, list[Problem]]:
    """The table itself, or the single .csv/.tsv in the folder `source`."""
    if source.is_file():
        return source, []
    tables = sorted(p for p in source.glob("*") if p.suffix.lower() in _TABLE_SUFFIXES)
    if len(tables) == 1:
        return tables[0], []
    names = ", ".join(p.name for p in tables) or "none"
    return None, [Problem(str(source), expected="one .csv/.tsv table of id, age, sex",
                          fix="pass the table itself as the source", value=f"tables: {names}")]


def image_stem(path: Path) -> str:
    """``/d/sub-1_T1w.nii.gz`` -> ``sub-1_T1w``."""
    return path.name.removesuffix(".gz").removesuffix(".nii")


def index_images(image_dir: Path) -> dict[str, list[Path]]:
    """Every NIfTI under `image_dir`, by each id it may belong to (``a_b_c``: a, a_b, a_b_c)."""
    index: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(image_dir.rglob("*.nii*")):
        if not path.name.endswith((".nii", ".nii.gz")) or path.name.startswith("."):
            continue
        parts = image_stem(path).split("_")
        for n in range(1, len(parts) + 1):
            index["_".join(parts[:n])].append(path)
    return index


def match_image(pid: str, index: dict[str, list[Path]]) -> list[Path]:
    """Images of `pid`: the one named exactly `pid`, else those named ``pid_*``."""
    candidates = index.get(pid, [])
    exact = [p for p in candidates if image_stem(p) == pid]
    return exact or candidates


def _attach_images(df: pd.DataFrame, table: Path, image_dir: Path,
                   index: dict[str, list[Path]]) -> tuple[pd.DataFrame, list[Problem], set[Path]]:
    """Add each row's image path; an id with no image or several is a Problem."""
    problems, paths, used = [], [], set()
    for idx, pid in df["participant_id"].items():
        found = match_image(str(pid), index)
        used.update(found)
        paths.append(os.path.abspath(found[0]) if len(found) == 1 else pd.NA)
        if len(found) != 1:
            names = ", ".join(p.name for p in found[:3]) or "none"
            problems.append(Problem(
                str(table), expected=f"one image in {image_dir} named {pid}.nii[.gz] or "
                f"{pid}_*.nii[.gz] (found: {names})",
                fix="add, rename or remove images so exactly one matches the id",
                value=pid, row=row_number(idx), column="participant_id", participant=str(pid)))
    df = df.assign(path=paths)
    return df[df["path"].notna()], problems, used


def _read_id_table(source: Path) -> tuple[Path | None, pd.DataFrame | None, list[Problem]]:
    """The table of ids, with ids stripped; rows without an id are Problems."""
    table, problems = _find_table(source)
    if table is None:
        return None, None, problems
    df, problems = read_user_table(table)
    if df is None:
        return table, None, problems
    df = standardise_columns(df, ("participant_id", "age", "sex", "site", "group"))
    if "participant_id" not in df.columns:
        return table, None, [Problem(
            str(table), expected=f"an id column (found {', '.join(df.columns)})",
            fix="name the id column 'id' or 'participant_id'", column="participant_id")]
    problems = [Problem(str(table), expected="an id in every row", row=row_number(i),
                        fix="fill it in or remove the row", column="participant_id")
                for i in df.index[df["participant_id"].isna()]]
    df = df[df["participant_id"].notna()]
    return table, df.assign(participant_id=df["participant_id"].str.strip()), problems


def read_tsan(source: str | Path, *, image_dir: str | Path | None = None,
              labels: set[str] | None = None, sex_codes: str | None = None) -> RawCohort:
    """Read a TSAN-style cohort.

    Args:
        source: The table (id, age, sex), or a folder holding exactly one such table.
        image_dir: Folder searched (recursively) for images; default the table's folder.
        labels: Participant ids to keep (None keeps all).
        sex_codes: Numeric sex convention; default ``0=female`` (TSAN's).
    """
    table, df, problems = _read_id_table(Path(source))
    if table is None or df is None:
        return RawCohort(empty_table(), problems)
    folder = Path(image_dir) if image_dir is not None else table.parent
    if not folder.is_dir():
        return RawCohort(empty_table(), problems + [
            Problem(str(folder), expected="a folder of NIfTI images", fix="check --image-dir")])
    index = index_images(folder)
    problems += unknown_labels(df["participant_id"], labels, str(table))
    df = df[label_mask(df["participant_id"], labels)]
    df, found, used = _attach_images(df, table, folder, index)
    df, parsed = parse_labels(df, str(table), sex_codes or DEFAULT_SEX_CODES)
    df[WHERE], df[ROW] = str(table), [row_number(i) for i in df.index]
    unused = len({p for paths in index.values() for p in paths} - used)
    notes = [f"{unused} image(s) in {folder} match no id in the table (not listed)"]
    return RawCohort(df, problems + found + parsed, notes if unused else [], row_per_scan=True)
