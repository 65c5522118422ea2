"""OpenBHB reader: per-subject ``.npy`` arrays, or the flat challenge arrays.

Per subject: ``sub-<id>_preproc-cat12vbm_desc-gm_T1w.npy`` (1, 121, 145, 121) or
``sub-<id>_preproc-quasiraw_T1w.npy`` (1, 182, 218, 182) anywhere under the folder, with
``participants.tsv`` (ids with or without ``sub-``).

Flat: ``train.npy`` / ``test.npy`` (subjects x features) with ``train.tsv`` /
``test.tsv``, one table row per array row. Each cohort row keeps the array as its path
and its row as ``array_index``. Arrays are only memory-mapped here, never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from brainage.data.bids import read_participants
from brainage.data.cohort import bids_label
from brainage.data.headers import flat_issues, issue_problems, npy_issues
from brainage.data.table_values import parse_labels
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

#: modality -> (file name after ``sub-<id>``, array shape)
MODALITIES: dict[str, tuple[str, tuple[int, ...]]] = {
    "vbm": ("_preproc-cat12vbm_desc-gm_T1w.npy", (1, 121, 145, 121)),
    "quasiraw": ("_preproc-quasiraw_T1w.npy", (1, 182, 218, 182)),
}
FLAT_SPLITS: tuple[str, ...] = ("train", "test")


def _flat_pairs(source: Path) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    """(array, table) pairs of the flat format; a half pair is a Problem."""
    if source.is_file():
        candidates = [(source, source.with_suffix(".tsv"))]
    else:
        candidates = [(source / f"{n}.npy", source / f"{n}.tsv") for n in FLAT_SPLITS]
    pairs, problems = [], []
    for npy, tsv in candidates:
        if npy.is_file() and tsv.is_file():
            pairs.append((npy, tsv))
        elif npy.is_file() or tsv.is_file():
            have, lack = (npy, tsv) if npy.is_file() else (tsv, npy)
            problems.append(Problem(str(lack), expected=f"this file next to {have.name}",
                                    fix=f"put {lack.name} next to {have.name}"))
    return pairs, problems


def _read_flat_part(npy: Path, tsv: Path, sex_codes: str | None
                    ) -> tuple[pd.DataFrame | None, list[Problem]]:
    """One array + table pair; the table must have one row per array row."""
    df, problems = read_user_table(tsv)
    if df is None:
        return None, problems
    problems += issue_problems(flat_issues(npy, len(df)), npy)
    df = standardise_columns(df, ("participant_id", "age", "sex", "site", "group"))
    if "participant_id" not in df.columns:
        return None, problems + [Problem(str(tsv), expected="a 'participant_id' column",
                                         fix="use the table that came with the array",
                                         column="participant_id")]
    df["participant_id"] = [pd.NA if pd.isna(i) else "sub-" + bids_label(str(i).strip())
                            for i in df["participant_id"]]
    df["array_index"] = list(range(len(df)))  # table row i describes array row i
    df["path"] = os.path.abspath(npy)
    if "split" not in df.columns:
        df["split"] = npy.stem
    df, found = parse_labels(df, str(tsv), sex_codes)
    df[WHERE] = str(tsv)
    df[ROW] = [int(i) + 1 for i in df.index]
    return df, problems + found


def read_flat(source: Path, labels: set[str] | None = None,
              sex_codes: str | None = None) -> RawCohort:
    """Read the flat challenge format (a folder with train/test pairs, or one ``.npy``)."""
    pairs, problems = _flat_pairs(source)
    parts = []
    for npy, tsv in pairs:
        df, found = _read_flat_part(npy, tsv, sex_codes)
        problems += found
        if df is not None:
            parts.append(df)
    table = pd.concat(parts, ignore_index=True) if parts else empty_table()
    problems += unknown_labels(table["participant_id"], labels, str(source))
    table = table[label_mask(table["participant_id"], labels)].reset_index(drop=True)
    return RawCohort(table, problems, row_per_scan=True, images_checked=True)


def _index_arrays(root: Path, suffix: str) -> tuple[dict[str, Path], list[Problem]]:
    """``sub-<id>`` -> array file, from every matching file under `root`."""
    found: dict[str, Path] = {}
    problems = []
    for path in sorted(root.rglob(f"sub-*{suffix}")):
        pid = path.name[: -len(suffix)]
        if pid in found:
            problems.append(Problem(str(path), fix="keep one copy of each array",
                                    expected=f"one array per participant (also at {found[pid]})"))
        else:
            found[pid] = path
    return found, problems


def read_per_subject(root: Path, modality: str = "vbm", labels: set[str] | None = None,
                     sex_codes: str | None = None, check_arrays: bool = True) -> RawCohort:
    """Read per-subject arrays of one modality with their participants.tsv."""
    suffix, shape = MODALITIES[modality]
    participants = root / "participants.tsv"
    arrays, problems = _index_arrays(root, suffix)
    part, found = read_participants(participants, labels, sex_codes)
    problems += found + unknown_labels([*arrays, *part["participant_id"]], labels, str(root))
    ids = [i for i in arrays if labels is None or bids_label(i) in labels]
    table = pd.DataFrame({"participant_id": ids,
                          "path": [os.path.abspath(arrays[i]) for i in ids]})
    table = table.merge(part, on="participant_id", how="left")
    table[WHERE] = table[WHERE].fillna(str(participants)) if WHERE in table else str(participants)
    if ROW not in table.columns:
        table[ROW] = pd.NA
    if not arrays:
        problems.append(Problem(str(root), expected=f"arrays named sub-<id>{suffix}",
                                fix="check the folder, or pick the other --modality"))
    if check_arrays:
        for path in table["path"]:
            problems += issue_problems(npy_issues(Path(path), shape), Path(path))
    unscanned = [
        Problem(str(participants), expected=f"a {modality} array (sub-<id>{suffix}) for every "
                "listed participant", fix="add the array, remove the row, or leave the "
                "participant out with --participant-label", value=pid, column="participant_id",
                row=None if pd.isna(row) else int(row), participant=pid)
        for pid, row in zip(part["participant_id"], part.get(ROW, [pd.NA] * len(part)),
                            strict=True) if pid not in set(ids)]
    return RawCohort(table, problems, images_checked=True, unscanned=unscanned)


def read_openbhb(source: str | Path, *, modality: str = "vbm", labels: set[str] | None = None,
                 sex_codes: str | None = None, check_arrays: bool = True) -> RawCohort:
    """Read OpenBHB data in either format (flat when train/test arrays are present).

    Args:
        source: Folder, or one flat ``.npy`` whose table sits next to it (same stem).
        modality: Per-subject arrays to use: ``vbm`` or ``quasiraw``.
        labels: Participant labels to keep (None keeps all).
        sex_codes: Declared numeric sex convention, if sex is coded as numbers.
        check_arrays: Check each per-subject array's header (shape, dtype). Flat arrays
            are always checked: their row count must match the table.
    """
    source = Path(source)
    if source.is_file() or any((source / f"{n}.npy").is_file() for n in FLAT_SPLITS):
        return read_flat(source, labels, sex_codes)
    return read_per_subject(source, modality, labels, sex_codes, check_arrays)
