"""Metrics of out-of-fold predictions, and the bias correction and intervals fitted on them.

Training predicts every scan with models that never saw its subject (out-of-fold for k-fold,
held-out for train/val/test); these functions summarise such a predictions table by set,
fit the age-bias correction and the conformal intervals on the held-out rows, and measure
the spread of a cascade's second stage within the bins of its stage-1 age.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from brainage.ages import discretize_age
from brainage.errors import BrainAgeError
from brainage.evaluation import metrics as M

#: Sets whose rows were predicted by models that did not train on them.
EVAL_ROLES = ("test", "internal_test", "external_test", "val")


def summary_metrics(age: Any, predicted: Any) -> dict[str, float | int]:
    """MAE, RMSE, r, R², mean gap, gap slope and Spearman r(gap, age) (uncorrected)."""
    y, p = np.asarray(age, float), np.asarray(predicted, float)
    out: dict[str, float | int] = {"n": int(len(y))}
    if len(y) == 0:
        return out
    out.update(mae=M.mae(y, p), rmse=M.rmse(y, p), mean_gap=M.mean_gap(y, p))
    if len(y) > 2 and np.ptp(y) > 0 and np.ptp(p) > 0:
        out.update(pearson_r=M.pearson_r(y, p), r2=M.r2(y, p), gap_slope=M.gap_slope(y, p),
                   spearman_gap_age=M.spearman_gap_age(y, p))
    return out


def set_metrics(preds: pd.DataFrame, column: str = "predicted_age") -> dict[str, Any]:
    """Metrics of each evaluation set (rows with an age only)."""
    out = {}
    for name in EVAL_ROLES:
        rows = preds[(preds["set"] == name) & preds["age"].notna()]
        if len(rows):
            out[name] = summary_metrics(rows["age"], rows[column])
    return out


def stage2_spread(preds: pd.DataFrame) -> dict[str, Any]:
    """Per-5-year-bin spread of final predictions for each set (see ``bin_spread``)."""
    out = {}
    for name in EVAL_ROLES:
        rows = preds[preds["set"] == name]
        if len(rows):
            out[name] = bin_spread(rows["stage1_age"], rows["predicted_age"])
    return out


def fit_bias(preds: pd.DataFrame) -> tuple[Any, str | None]:
    """Beheshti correction on validation predictions (else out-of-fold test predictions).

    Returns:
        ``(BiasCorrector or None, name of the set it was fitted on)``.
    """
    from brainage.evaluation.bias import BiasCorrector

    for name in ("val", "test"):
        rows = preds[(preds["set"] == name) & preds["age"].notna()]
        if len(rows) == 0:
            continue
        try:
            corrector = BiasCorrector("beheshti").fit(
                rows["age"], rows["predicted_age"], subject_ids=rows["participant_id"])
        except BrainAgeError as exc:
            warnings.warn(f"no bias correction stored: {exc}", stacklevel=2)
            return None, None
        return corrector, name
    return None, None


#: The interval method of runs (:class:`~brainage.evaluation.uncertainty.ConformalInterval`).
INTERVAL_METHOD = "asymmetric"


def fit_intervals(preds: pd.DataFrame, fitted_on: str | None, alpha: float = 0.1,
                  seed: int = 0, groups: int = 3, repeats: int = 20,
                  method: str = INTERVAL_METHOD) -> tuple[Any, dict[str, Any]]:
    """Split-conformal interval calibration on held-out predictions, with a coverage check.

    The calibration is Mondrian over `groups` quantile groups of the predicted age, because
    errors grow towards both ends of the age range (one pooled width under-covers them;
    :mod:`brainage.evaluation.uncertainty`). The check calibrates on a random half of the
    held-out subjects and measures coverage on the other half, overall and per tertile of
    the true age (mean of `repeats` splits), so the reported coverage is honest.

    Returns:
        ``(ConformalInterval or None, metrics dict)``.
    """
    from brainage.evaluation.uncertainty import ConformalInterval

    name = fitted_on or ("val" if (preds["set"] == "val").any() else "test")
    rows = preds[(preds["set"] == name) & preds["age"].notna()]
    try:
        cal = ConformalInterval(alpha=alpha, groups=groups, method=method).fit(  # type: ignore[arg-type]
            rows["age"], rows["predicted_age"])
    except BrainAgeError as exc:
        warnings.warn(f"no predictive intervals stored: {exc}", stacklevel=2)
        return None, {}
    y, p = rows["age"].to_numpy(float), rows["predicted_age"].to_numpy(float)
    check = _coverage_check(y, p, alpha, groups, seed, repeats, method)
    what = "absolute residuals" if method == "absolute" else \
        "signed residuals, each tail at alpha/2" if method == "asymmetric" else method
    info = {"procedure": f"split-conformal ({what}), Mondrian over {cal.groups_} "
                         "group(s) of predicted age", "nominal": 1 - alpha, "method": method,
            "fitted_on": name, "n_calibration": cal.n_calibration_, "groups": cal.groups_,
            "half_width": cal.quantile_, "group_half_widths": cal.quantiles_,
            **({"group_tails": [list(t) for t in cal.tails_]} if hasattr(cal, "tails_") else {}),
            **check,
            "check": f"calibrate on a random half of the held-out subjects, cover the other "
                     f"half; mean of {repeats} repeats; tertiles of the true age"}
    return cal, info


def _coverage_check(y: np.ndarray, p: np.ndarray, alpha: float, groups: int, seed: int,
                    repeats: int, method: str = INTERVAL_METHOD) -> dict[str, Any]:
    """Coverage and width of intervals calibrated on random halves, overall and per tertile."""
    from brainage.evaluation.uncertainty import ConformalInterval, coverage

    tertile = np.searchsorted(np.quantile(y, [1 / 3, 2 / 3]), y, side="right")
    rng = np.random.default_rng(seed)
    covs, widths, per = [], [], [[] for _ in range(3)]
    for _ in range(repeats):
        idx = rng.permutation(len(y))
        half, rest = idx[: len(y) // 2], idx[len(y) // 2:]
        check = ConformalInterval(alpha=alpha, min_subjects=10, groups=groups, min_per_group=9,
                                  method=method)  # type: ignore[arg-type]
        try:
            lo, hi = check.fit(y[half], p[half]).predict_interval(p[rest])
        except BrainAgeError:
            break
        c = coverage(y[rest], lo, hi)
        covs.append(c["coverage"])
        widths.append(c["mean_width"])
        inside = (y[rest] >= lo) & (y[rest] <= hi)
        for t in range(3):
            if (tertile[rest] == t).any():
                per[t].append(float(inside[tertile[rest] == t].mean()))
    return {"check_coverage": float(np.mean(covs)) if covs else None,
            "check_mean_width": float(np.mean(widths)) if widths else None,
            "check_coverage_by_age_tertile": [float(np.mean(v)) if v else None for v in per]}


def bin_spread(stage1_age: Any, predicted: Any, step: float = 5.0, decimals: int = 1
               ) -> dict[str, Any]:
    """Spread of final predictions within each discretized stage-1 bin.

    A collapsed stage 2 gives nearly one value per bin: SD near 0 and one or two distinct
    rounded values however many scans the bin holds.

    Args:
        stage1_age: Stage-1 predictions (the bins are their discretized values).
        predicted: Final (stage-2) predictions.
        step: Bin width in years (5).
        decimals: Rounding used to count distinct values (0.1 y).

    Returns:
        ``{"bins": [{"bin", "n", "sd", "distinct", "min", "max"}, ...], "mean_sd",
        "distinct_per_scan"}`` (summaries over bins with at least 2 scans).
    """
    s1, pred = np.asarray(stage1_age, float), np.asarray(predicted, float)
    ok = np.isfinite(s1) & np.isfinite(pred)
    bins_, pred = discretize_age(s1[ok], step), pred[ok]
    rows = []
    for b in np.unique(bins_):
        p = pred[bins_ == b]
        rows.append({"bin": float(b), "n": int(len(p)), "sd": float(p.std()),
                     "distinct": int(len(np.unique(np.round(p, decimals)))),
                     "min": float(p.min()), "max": float(p.max())})
    multi = [r for r in rows if r["n"] >= 2]
    return {
        "step": step, "decimals": decimals, "bins": rows,
        "mean_sd": float(np.mean([r["sd"] for r in multi])) if multi else None,
        "distinct_per_scan": (float(sum(r["distinct"] for r in multi) / sum(r["n"] for r in multi))
                              if multi else None),
    }
