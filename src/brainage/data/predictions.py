"""The predictions table: the contract between ``brainage predict`` and ``brainage evaluate``.

TSV, one row per scan, missing values written ``n/a``:

===============  =========  =======================================================
column           required   meaning
===============  =========  =======================================================
participant_id   yes        subject id (``sub-<label>``)
session          no         ``ses-<label>``; ``n/a`` (or absent) for single-session data
age              yes        chronological age in years; the value may be ``n/a``
age_source       no         ``participants.tsv``, ``PatientAge``, ``dates`` or ``none``
age_note         no         how a DICOM input's age was read (a fallback, an override)
predicted_age    yes        predicted (brain) age in years
gap              no         predicted_age - age; computed when absent, checked when present
sex              no         ``F`` / ``M`` (female/male accepted)
site             no         acquisition site
group            no         e.g. ``control`` / ``patient``
set              no         ``internal`` / ``external`` / ``val`` / ...; evaluated separately
fold             no         cross-validation fold
interval_low     no         lower end of a prediction interval (years)
interval_high    no         upper end of a prediction interval (years)
corrected_age    no         bias-corrected predicted age
corrected_gap    no         corrected_age - age
qc_flags         no         free text
ood              no         out-of-distribution flag(s)
error            no         why the scan was not predicted (``predicted_age`` is then n/a)
===============  =========  =======================================================

``brainage predict`` writes a row for every input scan: one it could not predict keeps its
ids and age, ``predicted_age`` n/a and the reason in ``error``; ``evaluate`` leaves such
rows out and names them (:func:`split_not_predicted`).

:func:`read_predictions` reports every bad row at once (:class:`~brainage.errors.ValidationError`).

:func:`aggregate` builds the table of a run from its folds' predictions: a scan's final
prediction is the mean over the models that held it out, preferring test roles (one model
per scan in k-fold: out-of-fold), then validation, then unlabelled subjects (all models).
Training and ``brainage probe`` both write run tables with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pandas as pd

from brainage.data.sex import normalise_sex
from brainage.errors import Problem, ValidationError
from brainage.io import read_table, write_tsv

REQUIRED: tuple[str, ...] = ("participant_id", "age", "predicted_age")
COLUMNS: tuple[str, ...] = (
    "participant_id", "session", "age", "predicted_age", "gap", "sex", "site", "group", "set",
    "fold", "interval_low", "interval_high", "corrected_age", "corrected_gap", "qc_flags", "ood",
    "error",
)
NUMERIC: tuple[str, ...] = (
    "age", "predicted_age", "gap", "interval_low", "interval_high", "corrected_age",
    "corrected_gap",
)
STRINGS: tuple[str, ...] = ("participant_id", "session", "site", "group", "set", "fold",
                             "error")
#: Largest accepted |gap - (predicted_age - age)|, in years (rounding in the writer).
GAP_TOLERANCE = 0.01
#: Decimals written for ages and gaps (1e-4 years is under an hour).
DECIMALS = 4


def read_predictions(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a predictions TSV.

    Returns:
        The typed table (see :func:`validate_predictions`).

    Raises:
        BrainAgeError: the file cannot be read.
        ValidationError: every problem found, each naming row, column, value and fix.
    """
    written = read_table(path, as_written=True)  # to quote a missing prediction as written
    df = read_table(path)
    return validate_predictions(df, where=str(path), written=written)


def write_predictions(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write a predictions table (standard columns first, extras after), atomically.

    Ages and gaps are rounded to :data:`DECIMALS` decimals.
    """
    cols = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    out = df[cols].copy()
    for col in NUMERIC:
        if col in out.columns:
            out[col] = out[col].astype(float).round(DECIMALS)
    write_tsv(path, out)


def validate_predictions(df: pd.DataFrame, where: str = "<predictions>",
                         written: pd.DataFrame | None = None) -> pd.DataFrame:
    """Check a predictions table and return a typed copy.

    Numbers become float (missing = NaN), labels pandas strings (missing = NA), ``sex``
    becomes ``F``/``M``, ``session`` and ``gap`` are added when absent.

    Args:
        df: Raw table, typically read as strings.
        where: File name used in messages.
        written: The same table with missing markers as written (``NaN``, ``n/a``, ``""``),
            to quote them in messages.

    Raises:
        ValidationError: listing every problem at once.
    """
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValidationError(
            [Problem(where, expected=f"a column named '{c}'", fix=_fix_missing(c), column=c)
             for c in missing],
            what=where,
        )
    out = df.reset_index(drop=True).copy()
    problems: list[Problem] = []
    if "session" not in out.columns:
        out.insert(1, "session", pd.NA)
    for col in STRINGS:
        if col in out.columns:
            out[col] = _as_string(out[col])
    blank_prediction = _as_string(out["predicted_age"]).isna().to_numpy()
    if "error" in out.columns:  # a scan predict could not predict, with the reason
        blank_prediction = blank_prediction & out["error"].isna().to_numpy()
    for col in NUMERIC:
        if col in out.columns:
            out[col] = _as_number(out[col], col, where, problems)
    problems += _check_rows(out, where, blank_prediction, written)
    if "sex" in out.columns:
        out["sex"] = _as_sex(out["sex"], where, problems)
    if "gap" not in out.columns:
        out.insert(out.columns.get_loc("predicted_age") + 1, "gap", np.nan)
        out["gap"] = out["predicted_age"] - out["age"]
    else:
        problems += _check_gap(out, where)
    if problems:
        problems.sort(key=lambda p: (p.row or 0, p.column or ""))
        raise ValidationError(problems, what=where)
    return out


def _fix_missing(col: str) -> str:
    if col == "age":
        return "add an 'age' column (chronological age; write n/a where unknown)"
    return f"add the '{col}' column (see brainage.data.predictions for the format)"


def _as_string(s: pd.Series) -> pd.Series:
    s = s.astype("string").str.strip()
    return s.mask(s == "")


def _as_number(s: pd.Series, col: str, where: str, problems: list[Problem]) -> pd.Series:
    raw = s.astype("string").str.strip()
    num = pd.to_numeric(raw, errors="coerce").astype(float)
    bad = (raw.notna() & ~np.isfinite(num.to_numpy(dtype=float, na_value=np.nan))).to_numpy()
    expected = "a finite number (years)" + ("" if col == "predicted_age" else " or n/a")
    for i in np.flatnonzero(bad):
        problems.append(Problem(
            where, expected=expected, value=str(raw.iloc[i]),
            fix=f"write a plain number such as 42.5 in '{col}'", row=int(i) + 1, column=col,
        ))
    return num.where(~bad)


def _as_sex(s: pd.Series, where: str, problems: list[Problem]) -> pd.Series:
    values: list[object] = []
    for i, v in enumerate(s.tolist()):
        try:
            values.append(normalise_sex(None if pd.isna(v) else v) or pd.NA)
        except ValueError:
            problems.append(Problem(where, expected="F, M or n/a", value=str(v),
                                    fix="write F or M (or n/a)", row=i + 1, column="sex"))
            values.append(pd.NA)
    return pd.Series(values, index=s.index, dtype="string")


def _check_rows(df: pd.DataFrame, where: str, blank_prediction: np.ndarray,
                written: pd.DataFrame | None) -> list[Problem]:
    problems: list[Problem] = []
    rows = np.arange(1, len(df) + 1)

    def add(mask: np.ndarray, col: str, expected: str, fix: str,
            value: Callable[[int], object]) -> None:
        for i in np.flatnonzero(mask):
            problems.append(Problem(where, expected=expected, fix=fix, value=value(int(i)),
                                    row=int(rows[i]), column=col))

    pid = df["participant_id"]
    add(pid.isna().to_numpy(), "participant_id", "a participant id such as sub-01",
        "fill in the participant id", lambda i: None)
    # Values that were not numbers were already reported; flag only true blanks here.
    as_written = None if written is None else written["predicted_age"].reset_index(drop=True)
    add(blank_prediction, "predicted_age", "a predicted age (number)",
        "fill in the prediction, drop the row, or give the reason in an 'error' column",
        lambda i: None if as_written is None else str(as_written.iloc[i]))
    key = pd.DataFrame({"p": pid, "s": df["session"].fillna("n/a")})
    dup = (key.duplicated(keep=False) & pid.notna()).to_numpy()
    first = key[dup].groupby(["p", "s"], sort=False).cumcount().to_numpy()
    firsts: dict[tuple[str, str], int] = {}
    for i, n in zip(np.flatnonzero(dup), first, strict=True):
        k = (str(key["p"].iloc[i]), str(key["s"].iloc[i]))
        if n == 0:
            firsts[k] = int(rows[i])
            continue
        problems.append(Problem(
            where, expected="one row per (participant_id, session)", value=f"{k[0]} / {k[1]}",
            fix=f"remove the duplicate or give it a session (same as row {firsts[k]})",
            row=int(rows[i]), column="participant_id",
        ))
    if {"interval_low", "interval_high"} <= set(df.columns):
        lo, hi = df["interval_low"].to_numpy(), df["interval_high"].to_numpy()
        add(lo > hi, "interval_low", "interval_low <= interval_high",
            "swap or recompute the interval bounds", lambda i: float(lo[i]))
    return problems


def _check_gap(df: pd.DataFrame, where: str) -> list[Problem]:
    expected = (df["predicted_age"] - df["age"]).to_numpy()
    gap = df["gap"].to_numpy()
    problems = []
    off = np.abs(gap - expected) > GAP_TOLERANCE  # NaN compares False: n/a gaps are filled
    for i in np.flatnonzero(off):
        problems.append(Problem(
            where, expected=f"gap = predicted_age - age = {expected[i]:.3f}", value=float(gap[i]),
            fix="recompute the gap or drop the column (it is then computed)", row=int(i) + 1,
            column="gap",
        ))
    fill = np.isnan(gap) & ~np.isnan(expected)
    df.loc[fill, "gap"] = expected[fill]
    return problems


def split_not_predicted(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows with a prediction, and rows ``predict`` could not predict (``error`` filled)."""
    if "error" not in df.columns:
        return df, df.iloc[:0]
    failed = df["error"].notna().to_numpy()
    return df[~failed].reset_index(drop=True), df[failed].reset_index(drop=True)


def not_predicted_note(failed: pd.DataFrame, shown: int = 5) -> str | None:
    """One line naming the scans that were not predicted and why (None when there are none)."""
    if failed.empty:
        return None
    names = [f"{pid}{'' if pd.isna(ses) else ' ' + str(ses)} ({err})" for pid, ses, err in
             zip(failed["participant_id"], failed["session"], failed["error"], strict=True)]
    more = f"; ... ({len(names)} in all)" if len(names) > shown else ""
    return (f"{len(names)} scan(s) were not predicted and are left out: "
            + "; ".join(names[:shown]) + more)


#: Lower is preferred when a scan is predicted under several roles.
ROLE_PRIORITY = {"test": 0, "internal_test": 0, "external_test": 0, "val": 1,
                 "unlabelled": 2, "unassigned": 2}
KEEP_COLUMNS = ("participant_id", "session", "run", "age", "sex", "site", "group")


def aggregate(table: pd.DataFrame, fold_preds: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per scan (predictions-table contract): mean over the preferred role's models."""
    long = pd.concat(fold_preds, ignore_index=True)
    long["priority"] = long["role"].map(ROLE_PRIORITY)
    best = long.groupby("scan")["priority"].transform("min")
    long = long[long["priority"] == best]
    g = long.groupby("scan")
    agg = pd.DataFrame({
        "predicted_age": g["predicted_age"].mean(),
        "ensemble_sd": g["predicted_age"].std(ddof=0),
        "n_models": g["predicted_age"].size(),
        "set": g["role"].first(),
        "fold": g["fold"].agg(lambda f: ",".join(str(int(x)) for x in sorted(set(f)))),
    })
    base = table.reset_index(drop=True)
    cols = [c for c in KEEP_COLUMNS if c in base and not (c == "run" and base[c].isna().all())]
    out = base.loc[agg.index, cols].copy()
    out.insert(out.columns.get_loc("age") + 1, "predicted_age", agg["predicted_age"])
    out.insert(out.columns.get_loc("predicted_age") + 1, "gap", out["predicted_age"] - out["age"])
    out["set"], out["fold"] = agg["set"], agg["fold"]
    if (agg["n_models"] > 1).any():
        out["ensemble_sd"] = agg["ensemble_sd"]
    if "stage1_age" in base:
        out["stage1_age"] = base.loc[agg.index, "stage1_age"]
    return out.reset_index(drop=True)
