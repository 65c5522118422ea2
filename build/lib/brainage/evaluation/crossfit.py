"""Bias correction on predictions tables: fit on a subset, apply, or cross-fit within a table.

Cross-fitting is what ``brainage evaluate`` does when no fitted correction is supplied:
subjects are split into ``k`` folds and each fold is corrected by a model fitted on the
other folds only, so no subject's corrected value depends on its own prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import InputError
from brainage.evaluation.bias import BiasCorrector


def _inputs(df: pd.DataFrame, corrector: BiasCorrector) -> dict[str, Any]:
    """Keyword arguments for ``fit``/``transform`` taken from a predictions table."""
    confounds = tuple(corrector.confounds)
    missing = [c for c in confounds if c not in df.columns]
    if corrector.per_site and "site" not in df.columns:
        missing.append("site")
    if missing:
        raise InputError(f"the predictions table has no column(s) {missing} needed by the "
                            "bias correction. Fix: add them or choose another correction.")
    return {
        "age": df["age"].to_numpy(dtype=float),
        "predicted": df["predicted_age"].to_numpy(dtype=float),
        "confounds_df": df[list(confounds)].reset_index(drop=True) if confounds else None,
        "site": df["site"].to_numpy(dtype=object) if corrector.per_site else None,
        "subject_ids": df["participant_id"].astype(str).to_numpy(dtype=object),
    }


def fit_on_table(df: pd.DataFrame, corrector: BiasCorrector,
                 mask: np.ndarray | pd.Series | None = None) -> BiasCorrector:
    """Fit `corrector` on the rows of a predictions table that have an age (and `mask`).

    Returns:
        The fitted corrector (the same object).
    """
    rows = df["age"].notna().to_numpy()
    if mask is not None:
        rows = rows & np.asarray(mask, dtype=bool)
    return corrector.fit(**_inputs(df[rows], corrector))


def apply_to_table(df: pd.DataFrame, corrector: BiasCorrector) -> pd.DataFrame:
    """Copy of `df` with ``corrected_age`` and ``corrected_gap`` (n/a where age is missing)."""
    out = df.copy()
    rows = out["age"].notna().to_numpy()
    corrected = np.full(len(out), np.nan)
    if rows.any():
        corrected[rows] = corrector.transform(**_inputs(out[rows], corrector))
    out["corrected_age"] = corrected
    out["corrected_gap"] = corrected - out["age"].to_numpy(dtype=float)
    return out


def subject_folds(ids: np.ndarray | pd.Series, k: int, seed: int = 0) -> np.ndarray:
    """Fold (0..k-1) of each row; every row of one subject gets the same fold.

    Subjects are shuffled with `seed` and dealt round-robin, so fold sizes differ by
    at most one subject.
    """
    ids = np.asarray(ids, dtype=str)
    subjects = np.array(sorted(set(ids)))
    if len(subjects) < k:
        raise InputError(f"cannot cross-fit {k} folds with {len(subjects)} subject(s).")
    shuffled = np.random.default_rng(seed).permutation(subjects)
    fold_of = {s: i % k for i, s in enumerate(shuffled)}
    return np.array([fold_of[i] for i in ids], dtype=int)


def crossfit_correct(df: pd.DataFrame, method: str = "beheshti", k: int = 5, seed: int = 0,
                     **params: Any) -> pd.DataFrame:
    """Correct every row with a model fitted on the other folds only.

    Args:
        df: Predictions table (``participant_id``, ``age``, ``predicted_age``; ``site``
            and confound columns as `params` need them).
        method: ``beheshti``, ``cole`` or ``smith``.
        k: Number of folds (by subject).
        seed: Seed of the fold assignment.
        **params: Further :class:`BiasCorrector` parameters (``degree``, ``per_site``, ...).

    Returns:
        Copy of `df` with ``corrected_age``, ``corrected_gap`` and ``crossfit_fold``
        (n/a for rows without age).

    Raises:
        BrainAgeError: a training part holds fewer than ``min_subjects`` subjects.
    """
    out = df.copy()
    rows = np.flatnonzero(out["age"].notna().to_numpy())
    folds = np.full(len(out), -1)
    folds[rows] = subject_folds(out["participant_id"].iloc[rows], k, seed)
    corrected = np.full(len(out), np.nan)
    for fold in range(k):
        train, test = rows[folds[rows] != fold], rows[folds[rows] == fold]
        model = BiasCorrector(method=method, **params)
        model.fit(**_inputs(out.iloc[train], model))
        corrected[test] = model.transform(**_inputs(out.iloc[test], model))
    out["corrected_age"] = corrected
    out["corrected_gap"] = corrected - out["age"].to_numpy(dtype=float)
    out["crossfit_fold"] = pd.array(np.where(folds >= 0, folds, None), dtype="Int64")
    return out
