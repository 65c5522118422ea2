"""The combiner of a stack run (``stack.json``): member predictions -> one prediction.

Fitted by :mod:`brainage.training.stack` on the members' out-of-fold predictions; used by
the :class:`~brainage.inference.predictor.Predictor` of a stack run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

STACK_JSON = "stack.json"
COMBINERS = ("convex", "positive", "mean")


def fit_combiner(P: np.ndarray, y: np.ndarray, method: str) -> dict[str, Any]:
    """Weights and intercept from (N, M) member predictions and (N,) ages.

    ``convex`` (the Super Learner's): non-negative least squares without intercept, weights
    rescaled to sum to 1, so the stack is a weighted mean of the members and a near-constant
    member cannot be scaled up; ``positive``: least squares with non-negative weights and an
    intercept (may also rescale the ages; unstable when a member barely varies); ``mean``:
    equal weights.
    """
    if method == "mean":
        return {"weights": [1.0 / P.shape[1]] * P.shape[1], "intercept": 0.0}
    if method == "convex":
        from scipy.optimize import nnls

        w, _ = nnls(np.asarray(P, dtype=float), np.asarray(y, dtype=float))
        w = w / w.sum() if w.sum() > 0 else np.full(P.shape[1], 1.0 / P.shape[1])
        return {"weights": [float(v) for v in w], "intercept": 0.0}
    from sklearn.linear_model import LinearRegression

    est = LinearRegression(positive=True).fit(P, y)
    return {"weights": [float(w) for w in est.coef_], "intercept": float(est.intercept_)}


def combine(P: np.ndarray, combiner: dict[str, Any]) -> np.ndarray:
    """(N,) stack predictions of (N, M) member predictions."""
    return P @ np.asarray(combiner["weights"], dtype=float) + float(combiner["intercept"])
