"""Longitudinal brain age: how fast the gap changes for subjects scanned several times.

For every subject with at least two sessions that have an age, the rate of change of the
gap is the least-squares slope of gap on age (years of gap per year of follow-up; with two
sessions, the difference of gaps over the interval). A rate of 0 means the brain ages at
the same pace as the calendar; +0.5 means half a year of extra brain age per year.

Note: with a Beheshti/Smith correction the corrected rate equals the uncorrected rate
minus the correction's age slope; with Cole it is rescaled by 1/a.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

KEEP = ("group", "site", "sex", "set")


def baseline_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per participant: the earliest scan (smallest age; then session order)."""
    order = df.assign(_age=df["age"], _ses=df["session"].astype(str) if "session" in df else "")
    order = order.sort_values(["participant_id", "_age", "_ses"], na_position="last",
                              kind="stable")
    first = order.drop_duplicates("participant_id", keep="first")
    return first.drop(columns=["_age", "_ses"]).sort_index()


def has_repeated_sessions(df: pd.DataFrame) -> bool:
    """True when some participant has two or more scans with an age."""
    with_age = df[df["age"].notna()]
    return bool(with_age["participant_id"].duplicated().any())


def gap_change_rates(df: pd.DataFrame,
                     gap_cols: Sequence[str] = ("gap", "corrected_gap")) -> pd.DataFrame:
    """Per-subject rate of change of each gap column (years per year).

    Args:
        df: Predictions table with ``participant_id``, ``age`` and the gap columns.
        gap_cols: Gap columns to analyse; absent ones are skipped.

    Returns:
        One row per subject with >= 2 aged sessions spanning more than zero years:
        ``participant_id, n_sessions, age_first, age_last, follow_up_years``, then
        ``<gap>_first`` and ``<gap>_rate`` per gap column, then group/site/sex/set of
        the first session when present.
    """
    cols = [c for c in gap_cols if c in df.columns]
    data = df[df["age"].notna()].copy()
    data["participant_id"] = data["participant_id"].astype(str)
    data = data.sort_values(["participant_id", "age"], kind="stable")
    by = data.groupby("participant_id", sort=True)
    centred_age = data["age"] - by["age"].transform("mean")
    out = pd.DataFrame({
        "n_sessions": by.size(),
        "age_first": by["age"].min(),
        "age_last": by["age"].max(),
    })
    out["follow_up_years"] = out["age_last"] - out["age_first"]
    sxx = (centred_age**2).groupby(data["participant_id"]).sum()
    for col in cols:
        gap = data[col].astype(float)
        sxy = (centred_age * (gap - by[col].transform("mean"))).groupby(data["participant_id"])
        out[f"{col}_first"] = by[col].first()
        out[f"{col}_rate"] = sxy.sum(min_count=1) / sxx.where(sxx > 0)
    for col in KEEP:
        if col in data.columns:
            out[col] = by[col].first()
    out = out[(out["n_sessions"] >= 2) & (out["follow_up_years"] > 0)]
    return out.reset_index(names="participant_id")


def summarise_rates(rates: pd.DataFrame, group_col: str = "group",
                    level: float = 0.95) -> dict[str, Any]:
    """Mean rate with a t confidence interval, overall and per group.

    Returns:
        ``{"n_subjects", "follow_up_years_mean", "<gap>_rate": {"overall": {...},
        "per_group": {group: {...}}}}`` with ``n, mean, sd, median, ci_low, ci_high``.
    """
    out: dict[str, Any] = {
        "n_subjects": int(len(rates)),
        "follow_up_years_mean": float(rates["follow_up_years"].mean()) if len(rates) else None,
    }
    for col in [c for c in rates.columns if c.endswith("_rate")]:
        entry: dict[str, Any] = {"overall": _describe(rates[col], level)}
        if group_col in rates.columns:
            entry["per_group"] = {str(g): _describe(sub[col], level)
                                  for g, sub in rates.groupby(group_col, sort=True)}
        out[col] = entry
    return out


def _describe(values: pd.Series, level: float) -> dict[str, float | int | None]:
    v = values.dropna().to_numpy(dtype=float)
    res: dict[str, float | int | None] = {"n": int(v.size), "mean": None, "sd": None,
                                           "median": None, "ci_low": None, "ci_high": None}
    if v.size == 0:
        return res
    res.update(mean=float(v.mean()), median=float(np.median(v)))
    if v.size > 1:
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * sd / np.sqrt(v.size)
        res.update(sd=sd, ci_low=float(v.mean() - half), ci_high=float(v.mean() + half))
    return res
