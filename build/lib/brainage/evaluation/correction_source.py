"""Decide where a table's bias correction comes from, apply it, and describe it.

Sources, in the order ``evaluate`` prefers them:

* ``supplied``: a fitted :class:`~brainage.evaluation.bias.BiasCorrector` (a run folder's
  ``bias_correction.json`` fitted on held-out validation predictions, or one refitted on
  the user's controls);
* ``table``: the ``corrected_age`` column already in the predictions table;
* ``crossfit``: fitted within the table, k-fold by subject, each fold corrected by a
  model fitted on the other folds;
* ``none``: no correction (too few subjects to cross-fit).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from brainage.errors import BrainAgeError, InputError
from brainage.evaluation.bias import BiasCorrector
from brainage.evaluation.crossfit import apply_to_table, crossfit_correct

SOURCES = ("auto", "table", "crossfit", "none")


def correct_predictions(df: pd.DataFrame, correction: BiasCorrector | str | None = None,
                        method: str = "beheshti", k: int = 5, seed: int = 0,
                        **params: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Add ``corrected_age``/``corrected_gap`` to a predictions table.

    Args:
        df: Validated predictions table.
        correction: Fitted BiasCorrector, or one of ``"auto"`` (None), ``"table"``,
            ``"crossfit"``, ``"none"``. Auto uses the table's ``corrected_age`` when it is
            filled for every row with an age, otherwise cross-fits (and falls back to no
            correction when there are too few subjects to cross-fit).
        method: Cross-fitting method.
        k: Cross-fitting folds.
        seed: Cross-fitting fold seed.
        **params: Further BiasCorrector parameters for cross-fitting.

    Returns:
        The corrected copy and a JSON-ready description with ``source``, ``available``
        and a one-line ``description`` for the terminal.
    """
    if isinstance(correction, BiasCorrector):
        info = {
            "source": "supplied", "available": True, "method": correction.method,
            "per_site": bool(correction.per_site), "formula": correction.formula(),
            "n_subjects_fit": correction.n_subjects_,
            "description": f"supplied {correction.method} correction fitted on "
                           f"{correction.n_subjects_} subjects ({correction.formula()})",
        }
        return apply_to_table(df, correction), info
    mode = "auto" if correction is None else str(correction)
    if mode not in SOURCES:
        raise InputError(f"unknown correction {mode!r}; expected a fitted BiasCorrector or "
                            f"one of {', '.join(SOURCES)}.")
    if mode == "auto":
        mode = "table" if _table_has_correction(df) else "crossfit"
        if mode == "crossfit":
            return _crossfit(df, method, k, seed, params, strict=False)
    if mode == "table":
        return _from_table(df)
    if mode == "crossfit":
        return _crossfit(df, method, k, seed, params, strict=True)
    return _without(df, "no bias correction requested")


def _table_has_correction(df: pd.DataFrame) -> bool:
    if "corrected_age" not in df.columns:
        return False
    with_age = df["age"].notna()
    return bool(with_age.any() and df.loc[with_age, "corrected_age"].notna().all())


def _from_table(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    if not _table_has_correction(df):
        raise InputError("the predictions table has no complete 'corrected_age' column; "
                            "supply a fitted correction or let evaluate cross-fit one.")
    out = df.copy()
    out["corrected_gap"] = out["corrected_age"] - out["age"]
    info = {"source": "table", "available": True,
            "description": "corrected_age column of the predictions table"}
    return out, info


def _crossfit(df: pd.DataFrame, method: str, k: int, seed: int, params: dict[str, Any],
              strict: bool) -> tuple[pd.DataFrame, dict[str, Any]]:
    try:
        out = crossfit_correct(df, method=method, k=k, seed=seed, **params)
    except BrainAgeError as exc:
        if strict:
            raise
        return _without(df, f"no fitted correction was supplied and cross-fitting failed: {exc}")
    info = {
        "source": "crossfit", "available": True, "method": method, "k": k, "seed": seed,
        "params": {key: list(v) if isinstance(v, tuple) else v for key, v in params.items()},
        "description": (
            f"no fitted correction was supplied: {method} correction cross-fitted within this "
            f"table ({k}-fold by subject; each fold corrected by a fit on the other folds)"
        ),
    }
    return out, info


def _without(df: pd.DataFrame, why: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    stale = [c for c in ("corrected_age", "corrected_gap") if c in df.columns]
    return df.drop(columns=stale), {"source": "none", "available": False, "description": why}
