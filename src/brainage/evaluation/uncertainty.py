"""Per-subject predictive intervals by split-conformal calibration.

A network's raw spread (fold ensemble SD, test-time-augmentation SD) is not a calibrated
interval. Split-conformal calibration turns it into one: on held-out subjects the
network did not train on, compute nonconformity scores

* ``absolute``:   s_i = |y_i - ŷ_i|                 -> interval ŷ ± q
* ``normalized``: s_i = |y_i - ŷ_i| / (σ_i + eps)   -> interval ŷ ± q·(σ + eps)

and take q as the ⌈(n+1)(1-α)⌉-th smallest score. For exchangeable subjects the
interval then covers the true age with probability at least 1-α (Vovk et al. 2005;
Lei et al. 2018). ``normalized`` gives wider intervals where the ensemble disagrees.

Brain-age errors are not exchangeable across the age range: regression to the mean makes
them largest at its ends, so one pooled quantile under-covers the youngest and oldest
subjects and over-covers the middle. ``groups=K`` calibrates a quantile per group of
*predicted* age (K quantile groups of the calibration predictions; Mondrian conformal,
Vovk et al. 2005), which is known at prediction time, so each group gets its own width
and its own coverage guarantee.

* ``asymmetric``: the two tails of the *signed* residuals y_i - ŷ_i are calibrated apart
  (α/2 each), per group -> interval [ŷ + q_low, ŷ + q_high]. Regression to the mean
  makes residuals one-sided at the ends of the age range (the oldest predicted are
  mostly older than predicted), so a symmetric width there is wide on the wrong side;
  separate tails follow the shift, with the same coverage guarantee per group (Romano
  et al. 2019 use the same two-tailed scores for quantile regression).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from brainage.errors import InputError

Method = Literal["absolute", "normalized", "asymmetric"]


class ConformalInterval(BaseEstimator):
    """Split-conformal predictive intervals for brain age.

    Args:
        alpha: Miscoverage level; 0.1 gives nominal 90 % intervals.
        method: ``"absolute"`` (constant width), ``"normalized"`` (width ∝ spread) or
            ``"asymmetric"`` (the two tails of the signed residuals, α/2 each).
        eps: Added to the spread in ``normalized`` mode so zero spread stays finite.
        min_subjects: Refuse to calibrate on fewer held-out subjects.
        groups: Calibrate separately within this many quantile groups of the predicted
            age (1 = one pooled quantile). Each group needs at least ``min_per_group``
            subjects; with fewer, fewer groups are used (recorded in ``groups_``).
        min_per_group: Smallest calibration group (a finite 90 % quantile needs 9).
    """

    def __init__(
        self, alpha: float = 0.1, method: Method = "absolute", eps: float = 0.5,
        min_subjects: int = 20, groups: int = 1, min_per_group: int = 15,
    ) -> None:
        self.alpha = alpha
        self.method = method
        self.eps = eps
        self.min_subjects = min_subjects
        self.groups = groups
        self.min_per_group = min_per_group

    def fit(self, age: Any, predicted: Any, spread: Any = None) -> ConformalInterval:
        """Calibrate on held-out subjects (never on the network's training subjects)."""
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha={self.alpha!r}: expected a number in (0, 1), e.g. 0.1.")
        y, yhat = _finite_pair(age, predicted)
        n = y.size
        if n < self.min_subjects:
            raise InputError(
                f"conformal calibration got {n} held-out subjects with an age; expected at "
                f"least {self.min_subjects}. Fix: calibrate on a larger validation set."
            )
        scores = np.abs(y - yhat) / self._scale(spread, n, np.isfinite(np.asarray(age, float)))
        self.quantile_ = self._conformal_quantile(scores)
        self.n_calibration_ = int(n)
        need = int(self.min_per_group)
        if self.method == "asymmetric":  # a finite alpha/2 tail needs n >= 2/alpha - 1
            need = max(need, math.ceil(2 / self.alpha) - 1)
        k = max(1, min(int(self.groups), n // max(need, 1)))
        self.groups_ = k
        self.edges_ = [float(e) for e in np.quantile(yhat, np.arange(1, k) / k)]
        group = np.searchsorted(self.edges_, yhat, side="right")
        self.quantiles_ = [self._conformal_quantile(scores[group == g]) for g in range(k)]
        if self.method == "asymmetric":
            signed = y - yhat
            self.tails_ = [self._tails(signed[group == g]) for g in range(k)]
        return self

    def _tails(self, signed: np.ndarray) -> tuple[float, float]:
        """(low, high) offsets: the α/2 conformal quantiles of each tail of `signed`."""
        n = signed.size
        rank = math.ceil((n + 1) * (1 - self.alpha / 2))
        if rank > n or n == 0:
            return (-np.inf, np.inf)
        ordered = np.sort(signed)
        return float(ordered[n - rank]), float(ordered[rank - 1])

    def _conformal_quantile(self, scores: np.ndarray) -> float:
        """The ⌈(n+1)(1-α)⌉-th smallest score (inf when n is too small for it)."""
        n = scores.size
        rank = math.ceil((n + 1) * (1 - self.alpha))
        return float(np.inf if rank > n or n == 0 else np.sort(scores)[rank - 1])

    def predict_interval(self, predicted: Any, spread: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(low, high)`` arrays for each prediction."""
        if not hasattr(self, "quantile_"):
            raise NotFittedError(
                "ConformalInterval is not calibrated yet. Fix: call fit(age, predicted) on "
                "held-out predictions first (or load a calibrated one with from_dict)."
            )
        yhat = np.asarray(predicted, dtype=float)
        edges = getattr(self, "edges_", [])
        if self.method == "asymmetric":
            tails = np.asarray(self.tails_, dtype=float)  # (K, 2)
            low, high = tails[np.searchsorted(edges, yhat, side="right")].T
            return yhat + low, yhat + high
        quantiles = np.asarray(getattr(self, "quantiles_", [self.quantile_]), dtype=float)
        q = quantiles[np.searchsorted(edges, yhat, side="right")] if len(quantiles) > 1 \
            else self.quantile_
        half = q * self._scale(spread, yhat.size, np.ones(yhat.size, bool))
        return yhat - half, yhat + half

    def _scale(self, spread: Any, n: int, keep: np.ndarray) -> np.ndarray:
        if self.method in ("absolute", "asymmetric"):
            return np.ones(n)
        if self.method != "normalized":
            raise InputError(f"method={self.method!r}: expected 'absolute', 'normalized' or "
                             "'asymmetric'.")
        if spread is None:
            raise InputError(
                "normalized conformal intervals need a per-subject spread (e.g. the fold "
                "ensemble SD). Fix: pass spread=..., or use method='absolute'."
            )
        s = np.asarray(spread, dtype=float)[keep] if keep.size != n else np.asarray(spread, float)
        if s.size != n or not np.all(np.isfinite(s)) or np.any(s < 0):
            raise InputError("spread must be finite, non-negative, one value per subject.")
        return s + self.eps

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (parameters and the calibrated quantile)."""
        out: dict[str, Any] = {"kind": "conformal", **self.get_params()}
        if hasattr(self, "quantile_"):
            out.update(quantile=self.quantile_, n_calibration=self.n_calibration_)
        if getattr(self, "groups_", 1) > 1:
            out.update(group_edges=self.edges_, group_quantiles=self.quantiles_)
        if hasattr(self, "tails_"):
            out.update(group_edges=self.edges_, group_tails=[list(t) for t in self.tails_])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConformalInterval:
        """Inverse of :meth:`to_dict`."""
        names = ("alpha", "method", "eps", "min_subjects", "groups", "min_per_group")
        obj = cls(**{k: data[k] for k in names if k in data})
        if "quantile" in data:
            obj.quantile_ = float(data["quantile"])
            obj.n_calibration_ = int(data["n_calibration"])
        if "group_quantiles" in data:
            obj.quantiles_ = [float(q) for q in data["group_quantiles"]]
            obj.edges_ = [float(e) for e in data["group_edges"]]
            obj.groups_ = len(obj.quantiles_)
        if "group_tails" in data:
            obj.tails_ = [(float(a), float(b)) for a, b in data["group_tails"]]
            obj.edges_ = [float(e) for e in data["group_edges"]]
            obj.groups_ = len(obj.tails_)
        return obj


def _finite_pair(age: Any, predicted: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(age, dtype=float)
    yhat = np.asarray(predicted, dtype=float)
    if y.shape != yhat.shape:
        raise InputError(f"age and predicted have different shapes {y.shape} vs {yhat.shape}.")
    keep = np.isfinite(y) & np.isfinite(yhat)
    return y[keep], yhat[keep]


def coverage(age: Any, low: Any, high: Any) -> dict[str, float]:
    """Empirical coverage and mean width of intervals, over subjects with an age."""
    y = np.asarray(age, dtype=float)
    lo = np.asarray(low, dtype=float)
    hi = np.asarray(high, dtype=float)
    keep = np.isfinite(y)
    inside = (y[keep] >= lo[keep]) & (y[keep] <= hi[keep])
    return {
        "coverage": float(inside.mean()) if keep.any() else float("nan"),
        "mean_width": float(np.mean(hi[keep] - lo[keep])) if keep.any() else float("nan"),
        "n": int(keep.sum()),
    }
