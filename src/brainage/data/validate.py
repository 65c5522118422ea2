"""Validation of an assembled cohort: image headers, duplicates, labels and sites; every
problem is collected, none raised.

Readers parse each table they read (:func:`brainage.data.table_values.parse_labels`, so a
bad value names that file and row), then :func:`validate_cohort` checks the assembled rows.
Images are checked from their headers only (see :mod:`brainage.data.headers`; no voxel is
read), so 10,000 rows validate in seconds.

Rows of an assembled table carry their provenance in two private columns, :data:`WHERE`
(the file describing the row) and :data:`ROW` (its 1-based data row, or missing).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from brainage.data.cohort import KEY
from brainage.data.headers import flat_issues, image_issues, issue_problems
from brainage.data.labels import label_problems
from brainage.data.table_values import is_missing, text_or_none
from brainage.errors import Problem

#: Private provenance columns: file and 1-based row a cohort row was described in.
WHERE, ROW = "_where", "_row"
#: BIDS entities (besides sub, ses, run) that keep two images of one session distinct.
ENTITY_COLUMNS: tuple[str, ...] = ("acq", "ce", "rec", "dir", "echo", "part", "inv", "mt", "chunk")


def check_images(table: pd.DataFrame, paths_listed: bool) -> list[Problem]:
    """Check the header of every distinct image path once.

    Rows with an ``array_index`` are rows of a flat array: the array must be 2D with
    enough rows.

    Args:
        table: Assembled rows with ``path`` and the provenance columns.
        paths_listed: The paths were written in a table (then problems point at its rows);
            otherwise they were found on disk and problems name the image file.
    """
    problems: list[Problem] = []
    first: dict[str, tuple[str, int] | None] = {}
    who: dict[str, tuple[str | None, str | None]] = {}
    rows_needed: dict[str, int] = {}
    index = table["array_index"] if "array_index" in table.columns else [None] * len(table)
    sessions = table["session"] if "session" in table.columns else [None] * len(table)
    columns = (table["path"].tolist(), table[WHERE].tolist(), table[ROW].tolist(), list(index),
               table.get("participant_id", pd.Series([None] * len(table))).tolist(),
               list(sessions))
    for path, where, row, i, pid, ses in zip(*columns, strict=True):
        if is_missing(path):
            continue
        if path not in first:
            first[path] = (str(where), int(row)) if paths_listed and not is_missing(row) else None
            who[path] = (text_or_none(pid), text_or_none(ses))
        if not is_missing(i):
            rows_needed[path] = max(rows_needed.get(path, 0), int(i) + 1)
    for path, loc in first.items():
        if path in rows_needed:
            issues = flat_issues(Path(path), rows_needed[path], at_least=True)
        else:
            issues = image_issues(Path(path))
        pid, ses = who[path]
        problems += [dataclasses.replace(p, participant=pid, session=ses)
                     for p in issue_problems(issues, Path(path), loc)]
    return problems


def _locate(table: pd.DataFrame, pos: int, row_per_scan: bool) -> tuple[str, int | None]:
    row = table[ROW].iloc[pos]
    if row_per_scan and not is_missing(row):
        return str(table[WHERE].iloc[pos]), int(row)
    return str(table["path"].iloc[pos]), None


def _keys(table: pd.DataFrame, cols: list[str]) -> list[str]:
    values = zip(*(table[c].tolist() for c in cols), strict=True)
    return [" ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True) if not is_missing(v))
            for row in values]


def check_duplicates(table: pd.DataFrame, row_per_scan: bool) -> list[Problem]:
    """Rows describing the same scan or image, and scans told apart only by acq-, rec-, ...
    entities (outputs are named by participant, session and run, so they would collide).

    Args:
        table: Assembled rows with the provenance columns.
        row_per_scan: Each table row describes one scan (plain, flat OpenBHB and TSAN
            tables): problems name those rows. Otherwise they name the image files.
    """
    cols = [c for c in (*KEY, *ENTITY_COLUMNS) if c in table.columns]
    path_cols = ["path"] + [c for c in ("array_index", "dicom_series") if c in table.columns]
    problems: list[Problem] = []
    flagged: set[int] = set()
    key_cols = [c for c in KEY if c in table.columns]
    for columns, what in ((cols, "scan"), (path_cols, "image"), (key_cols, "output")):
        first: dict[str, int] = {}
        for pos, key in enumerate(_keys(table, columns)):
            if key not in first:
                first[key] = pos
            elif pos not in flagged:
                flagged.add(pos)
                problems.append(_duplicate(table, pos, first[key], key, what, row_per_scan))
    return problems


def _duplicate(table: pd.DataFrame, pos: int, first: int, key: str, what: str,
               row_per_scan: bool) -> Problem:
    where, row = _locate(table, pos, row_per_scan)
    other, other_row = _locate(table, first, row_per_scan)
    earlier = other if other_row is None else f"{other}, row {other_row}"
    ses = table["session"].iloc[pos] if "session" in table.columns else None
    if what == "output":  # told apart only by acq-, rec-, ...: outputs are named without them
        def entity(c: str, at: int) -> str:
            label = text_or_none(table[c].iloc[at])
            return f"{c}-{label}" if label else f"no {c}"

        differ = ", ".join(f"{entity(c, pos)} vs {entity(c, first)}" for c in ENTITY_COLUMNS
                           if c in table.columns and entity(c, pos) != entity(c, first))
        expected = (f"one T1w scan per participant, session and run: outputs are named by "
                    f"those alone, so this scan ({differ}) would collide with {earlier}")
        fix = ("keep one of these scans per session (list the one to use in a table with a "
               "'path' column, or move the other out of the BIDS folder), or give them "
               "run-<n> entities")
    else:
        expected = f"each {what} listed once (the same {what} is at {earlier})"
        fix = "remove the duplicate, or tell the scans apart (a run-<n> entity)"
    return Problem(
        where, expected=expected, fix=fix, value=key, row=row,
        participant=text_or_none(table["participant_id"].iloc[pos]), session=text_or_none(ses),
    )


def check_labels(table: pd.DataFrame, row_per_scan: bool) -> list[Problem]:
    """Labels that name no output file (``..``) or collide once cleaned (``A_1``, ``A-1``)."""
    keys = [(str(p), None if is_missing(s) else str(s), None if is_missing(r) else int(r))
            for p, s, r in zip(table["participant_id"], table.get("session", [None] * len(table)),
                               table.get("run", [None] * len(table)), strict=True)
            if not is_missing(p)]
    where = [_locate(table, pos, row_per_scan) for pos in range(len(table))
             if not is_missing(table["participant_id"].iloc[pos])]
    return label_problems(keys, where)


def check_site(table: pd.DataFrame, source: str) -> list[Problem]:
    """Every scan needs a site when a site-aware split is asked for."""
    fix = "fill in the site of every participant, or leave out --require-site"
    if "site" not in table.columns or table["site"].isna().all():
        return [Problem(source, expected="a 'site' column (a site-aware split was asked for)",
                        fix=fix, column="site")]
    problems = []
    seen: set[object] = set()
    cols = (table["participant_id"], table["site"], table[WHERE], table[ROW])
    for pid, site, where, row in zip(*cols, strict=True):
        if is_missing(site) and (where, row, pid) not in seen:
            seen.add((where, row, pid))
            problems.append(Problem(
                str(where), expected="a site for every scan (a site-aware split was asked for)",
                fix=fix, row=None if is_missing(row) else int(row), column="site",
                participant=text_or_none(pid),
            ))
    return problems


def validate_cohort(table: pd.DataFrame, source: str, *, paths_listed: bool,
                    row_per_scan: bool, check_files: bool = True,
                    require_site: bool = False) -> list[Problem]:
    """All cohort-level problems: image headers, duplicates, labels and (optionally) sites.

    Args:
        table: Assembled rows with the provenance columns WHERE and ROW.
        source: The cohort source, for problems about the whole cohort.
        paths_listed: Image paths were written in the table (see :func:`check_images`).
        row_per_scan: Each table row describes one scan (see :func:`check_duplicates`).
        check_files: Check image headers.
        require_site: Every scan needs a site.
    """
    problems = check_images(table, paths_listed) if check_files else []
    problems += check_duplicates(table, row_per_scan) + check_labels(table, row_per_scan)
    if require_site:
        problems += check_site(table, source)
    return problems
