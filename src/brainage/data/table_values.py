"""Parsing of a cohort table's values: ages, sex codes, run numbers and array rows.

Readers call :func:`parse_labels` on each table they read, so a bad value becomes a
:class:`~brainage.errors.Problem` naming that file, row and participant (every one is
collected, none raised); :mod:`brainage.data.validate` then checks the assembled rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable

import pandas as pd

from brainage.data.sex import NUMERIC_CONVENTIONS, normalise_sex
from brainage.errors import Problem
from brainage.io import MISSING

AGE_MIN, AGE_MAX = 0.0, 120.0


def is_missing(value: object) -> bool:
    """True for None, NaN/NA and the strings read as missing (``""``, ``n/a``, ...)."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() in MISSING


def row_number(idx: Hashable) -> int:
    """1-based data row of a table read with a default index (header excluded)."""
    return int(idx) + 1  # type: ignore[call-overload]


def text_or_none(value: object) -> str | None:
    """`value` as text, or None when it is missing (for the participant of a Problem)."""
    return None if is_missing(value) else str(value)


def name_rows(problems: list[Problem], df: pd.DataFrame, participant: str | None = None
              ) -> list[Problem]:
    """Each row Problem with the participant (and session) of its row in `df`.

    Args:
        problems: Problems whose ``row`` is the 1-based data row of `df`'s file.
        df: The table, indexed by 0-based data row (as read).
        participant: The participant every row describes (a sessions.tsv), if one does.
    """
    out = []
    for p in problems:
        idx = None if p.row is None else p.row - 1
        if idx is None or p.participant is not None or idx not in df.index:
            out.append(p)
            continue
        pid = df.at[idx, "participant_id"] if "participant_id" in df.columns else participant
        ses = df.at[idx, "session"] if "session" in df.columns else None
        out.append(dataclasses.replace(p, participant=text_or_none(pid),
                                       session=text_or_none(ses)))
    return out


def _number(raw: object) -> float:
    try:
        return float(str(raw).strip())
    except ValueError:
        return math.nan


def parse_ages(
    values: pd.Series, where: str, column: str = "age"
) -> tuple[pd.Series, list[Problem]]:
    """Parse ages in years; missing stays missing, bad values become Problems (and NaN).

    Args:
        values: Raw values, indexed by 0-based data row of the file `where`.
        where: File the values come from.
        column: Column name, for the messages.

    Returns:
        Float ages (NaN where missing or invalid) and one Problem per invalid value.
    """
    ages: list[float] = []
    problems = []
    for idx, raw in zip(values.index, values.tolist(), strict=True):
        age = math.nan if is_missing(raw) else _number(raw)
        if not is_missing(raw) and not AGE_MIN <= age <= AGE_MAX:  # NaN and inf fail
            age = math.nan
            problems.append(Problem(
                where, expected=f"a number of years between {AGE_MIN:g} and {AGE_MAX:g}",
                fix="correct the value or write n/a if unknown",
                value=raw, row=row_number(idx), column=column,
            ))
        ages.append(age)
    return pd.Series(ages, index=values.index, dtype=float), problems


def parse_sex(
    values: pd.Series, where: str, numeric: str | None = None, column: str = "sex"
) -> tuple[pd.Series, list[Problem]]:
    """Normalise sex codes to ``F``/``M`` (missing stays missing); bad codes become Problems."""
    codes: list[str | None] = []
    problems = []
    for idx, raw in zip(values.index, values.tolist(), strict=True):
        try:
            codes.append(normalise_sex(raw, numeric))
        except ValueError:
            codes.append(None)
            problems.append(_sex_problem(raw, where, row_number(idx), column, numeric))
    return pd.Series(codes, index=values.index, dtype="string"), problems


def _sex_problem(raw: object, where: str, row: int, column: str, numeric: str | None) -> Problem:
    text = str(raw).strip().removesuffix(".0")
    if text.isdigit() and numeric is None:
        return Problem(
            where, expected="F/M or female/male; numeric codes need a declared convention",
            fix=f"declare the convention with --sex-codes ({' | '.join(NUMERIC_CONVENTIONS)})",
            value=raw, row=row, column=column,
        )
    codes = f"F/M, female/male or the numeric codes of '{numeric}'" if numeric else "F/M"
    return Problem(
        where, expected=f"a sex code ({codes})",
        fix="correct the value (F or M), or write n/a if unknown",
        value=raw, row=row, column=column,
    )


def parse_ints(
    values: pd.Series, where: str, column: str = "run", minimum: int = 1
) -> tuple[pd.Series, list[Problem]]:
    """Parse whole numbers >= `minimum` (run numbers, array rows); missing stays missing."""
    out: list[int | None] = []
    problems = []
    for idx, raw in zip(values.index, values.tolist(), strict=True):
        text = "" if is_missing(raw) else str(raw).strip().removesuffix(".0")
        out.append(int(text) if text.isdigit() and int(text) >= minimum else None)
        if text and out[-1] is None:
            problems.append(Problem(
                where, expected=f"a whole number >= {minimum}", fix="correct the value",
                value=raw, row=row_number(idx), column=column,
            ))
    return pd.Series(out, index=values.index, dtype="Int64"), problems


def parse_labels(
    df: pd.DataFrame, where: str, sex_codes: str | None = None,
    participant: str | None = None,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse the age, sex, run and array_index columns of a table read as strings.

    Args:
        df: Table as read by :func:`brainage.io.read_table`, index = 0-based data row.
        where: The table's file, for the messages.
        sex_codes: Declared numeric sex convention, if any.
        participant: The participant of every row, when `df` has no participant_id
            column (a sessions.tsv); problems name it.
    """
    out = df.copy()
    problems: list[Problem] = []
    if "age" in out.columns:
        out["age"], found = parse_ages(out["age"], where)
        problems += found
    if "sex" in out.columns:
        out["sex"], found = parse_sex(out["sex"], where, sex_codes)
        problems += found
    for column, minimum in (("run", 1), ("array_index", 0)):
        if column in out.columns:
            out[column], found = parse_ints(out[column], where, column, minimum)
            problems += found
    return out, name_rows(problems, df, participant)
