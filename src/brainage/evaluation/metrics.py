"""Brain-age metrics following the field's reporting standard, with bootstrap intervals.

Headline metrics (uncorrected and bias-corrected side by side): MAE, RMSE, Pearson
r(age, predicted), R², mean signed gap, slope of the gap on age, Spearman r(gap, age);
plus MAE per age bin and per site, for the whole table and for each ``set``
(``internal``, ``external``, ...). Intervals are percentile bootstrap intervals over
participants (all sessions of a subject resampled together); the bias correction is
held fixed within the bootstrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from brainage.evaluation.bootstrap import CORE_METRICS, bootstrap, core_stats, subgroup_mae
from brainage.evaluation.correction_source import correct_predictions

__all__ = [
    "CORE_METRICS", "mae", "rmse", "pearson_r", "r2", "mean_gap", "gap_slope",
    "spearman_gap_age", "default_age_bins", "evaluate_predictions", "compute_metrics",
    "metrics_table", "json_ready",
]


def mae(age: Any, predicted: Any) -> float:
    """Mean absolute error (years)."""
    return float(np.mean(np.abs(np.asarray(predicted, float) - np.asarray(age, float))))


def rmse(age: Any, predicted: Any) -> float:
    """Root mean squared error (years)."""
    return float(np.sqrt(np.mean((np.asarray(predicted, float) - np.asarray(age, float)) ** 2)))


def pearson_r(age: Any, predicted: Any) -> float:
    """Pearson correlation of predicted with chronological age."""
    return float(stats.pearsonr(np.asarray(age, float), np.asarray(predicted, float))[0])


def r2(age: Any, predicted: Any) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` of predicted vs age."""
    y, p = np.asarray(age, float), np.asarray(predicted, float)
    return float(1 - np.sum((p - y) ** 2) / np.sum((y - y.mean()) ** 2))


def mean_gap(age: Any, predicted: Any) -> float:
    """Mean signed brain-age gap, predicted - age (years)."""
    return float(np.mean(np.asarray(predicted, float) - np.asarray(age, float)))


def gap_slope(age: Any, predicted: Any) -> float:
    """Least-squares slope of the gap on age (years of gap per year of age)."""
    y = np.asarray(age, float)
    return float(np.polyfit(y, np.asarray(predicted, float) - y, 1)[0])


def spearman_gap_age(age: Any, predicted: Any) -> float:
    """Spearman correlation of the gap with age (PAC 2019 asked for |r| < 0.10)."""
    y = np.asarray(age, float)
    return float(stats.spearmanr(np.asarray(predicted, float) - y, y)[0])


def default_age_bins(age: Any, width: float = 10.0) -> list[float]:
    """Bin edges every `width` years covering `age` (e.g. 20, 30, ..., 80)."""
    y = np.asarray(age, float)
    y = y[np.isfinite(y)]
    if y.size == 0:
        return []
    lo, hi = np.floor(y.min() / width) * width, np.floor(y.max() / width) * width + width
    return [float(e) for e in np.arange(lo, hi + width / 2, width)]


def evaluate_predictions(df: pd.DataFrame, correction: Any = None, n_boot: int = 1000,
                         seed: int = 0, age_bins: Sequence[float] | None = None,
                         method: str = "beheshti", k: int = 5, level: float = 0.95) -> dict:
    """Bias-correct (see :func:`correct_predictions`) and compute every metric.

    Args:
        df: Validated predictions table (:func:`~brainage.data.predictions.read_predictions`).
        correction: A fitted BiasCorrector, ``"table"`` (use ``corrected_age``),
            ``"crossfit"``, ``"none"``, or None (table column if complete, else cross-fit).
        n_boot: Bootstrap resamples (0: no intervals).
        seed: Seed of the bootstrap and of the cross-fitting folds.
        age_bins: Bin edges for age-binned MAE (default: decades covering the data).
        method: Method used when cross-fitting.
        k: Folds when cross-fitting.
        level: Interval coverage.

    Returns:
        JSON-ready dict (see :func:`compute_metrics`).
    """
    corrected, info = correct_predictions(df, correction, method=method, k=k, seed=seed)
    return compute_metrics(corrected, info, n_boot=n_boot, seed=seed, age_bins=age_bins,
                           level=level)


def compute_metrics(df: pd.DataFrame, correction_info: dict, n_boot: int = 1000, seed: int = 0,
                    age_bins: Sequence[float] | None = None, level: float = 0.95) -> dict:
    """Metrics for the whole table and each ``set``, uncorrected and corrected.

    Args:
        df: Predictions table; ``corrected_age`` is used when ``correction_info`` says so.
        correction_info: From :func:`correct_predictions`.
        n_boot, seed, age_bins, level: As in :func:`evaluate_predictions`.

    Returns:
        ``{"n_boot", "seed", "level", "bootstrap_unit", "correction", "sets": {name: ...}}``
        where each set holds counts, the age summary, ``uncorrected``/``corrected``
        metrics as ``{"estimate", "ci_low", "ci_high"}``, ``age_bins`` and ``per_site``.
    """
    bins = list(age_bins) if age_bins is not None else default_age_bins(df["age"])
    use_corrected = bool(correction_info.get("available"))
    sets = {"overall": df}
    if "set" in df.columns:
        for name in sorted(df["set"].dropna().unique()):
            sets[str(name)] = df[df["set"] == name]
    result = {
        "n_boot": int(n_boot), "seed": int(seed), "level": level,
        "bootstrap_unit": "participant", "correction": correction_info, "sets": {},
    }
    for name, sub in sets.items():
        result["sets"][name] = _evaluate_set(sub, bins, use_corrected, n_boot, seed, level)
    return json_ready(result)


def _evaluate_set(df: pd.DataFrame, bins: list[float], use_corrected: bool, n_boot: int,
                  seed: int, level: float) -> dict:
    rows = df[df["age"].notna()]
    age = rows["age"].to_numpy(float)
    out: dict[str, Any] = {
        "n_scans": len(df), "n_with_age": len(rows),
        "n_subjects": int(rows["participant_id"].nunique()),
        "age": _age_summary(age),
    }
    if len(rows) < 3:
        out["note"] = "fewer than 3 scans with an age; no metrics"
        return out
    versions = {"uncorrected": rows["predicted_age"].to_numpy(float)}
    if use_corrected:
        versions["corrected"] = rows["corrected_age"].to_numpy(float)
    clusters = pd.factorize(rows["participant_id"])[0]
    bin_codes = np.digitize(age, bins) - 1 if len(bins) > 1 else np.full(len(age), -1)
    bin_codes[(bin_codes < 0) | (bin_codes >= len(bins) - 1)] = -1
    sites = rows["site"] if "site" in rows.columns else pd.Series(pd.NA, index=rows.index)
    site_codes, site_names = pd.factorize(sites, sort=True)

    def stats_fn(w: np.ndarray) -> dict[str, np.ndarray]:
        res: dict[str, np.ndarray] = {}
        for version, pred in versions.items():
            res.update({f"{version}.{k}": v for k, v in core_stats(w, age, pred).items()})
            abs_gap = np.abs(pred - age)
            res[f"{version}.bins"] = subgroup_mae(w, abs_gap, bin_codes, max(len(bins) - 1, 0))
            res[f"{version}.sites"] = subgroup_mae(w, abs_gap, site_codes, len(site_names))
        return res

    boot = bootstrap(stats_fn, clusters, n_boot, seed, level)
    for version in versions:
        out[version] = {m: _interval(boot[f"{version}.{m}"]) for m in CORE_METRICS}
    undefined = undefined_metrics(age, versions)
    if undefined:
        out["undefined"] = undefined
    labels = [f"{lo:g}-{hi:g}" for lo, hi in zip(bins[:-1], bins[1:], strict=False)]
    out["age_bins"] = _strata(boot, versions, "bins", labels, bin_codes, "bin")
    out["per_site"] = _strata(boot, versions, "sites", [str(s) for s in site_names],
                              site_codes, "site")
    return out


#: Metrics that need ages that vary (and, for r, predictions that vary).
AGE_SPREAD_METRICS = ("pearson_r", "r2", "gap_slope", "spearman_gap_age")


def undefined_metrics(age: np.ndarray, versions: dict[str, np.ndarray]) -> dict[str, str]:
    """``{metric: reason}`` for metrics that are undefined on these ages and predictions."""
    if np.ptp(age) == 0:
        why = f"every age is {age[0]:g} (no variance)"
        return dict.fromkeys(AGE_SPREAD_METRICS, why)
    flat = [v for v, pred in versions.items() if np.ptp(pred) == 0]
    if flat:
        return {"pearson_r": f"every {flat[0]} predicted age is the same (no variance)"}
    return {}


def _interval(r: dict[str, np.ndarray], i: int | None = None) -> dict[str, float]:
    pick = (lambda a: a) if i is None else (lambda a: a[i])
    return {k: float(pick(v)) for k, v in r.items()}


def _strata(boot: dict, versions: dict, key: str, labels: list[str], codes: np.ndarray,
            label_name: str) -> list[dict[str, Any]]:
    out = []
    for i, label in enumerate(labels):
        n = int((codes == i).sum())
        if n == 0:
            continue
        entry: dict[str, Any] = {label_name: label, "n": n}
        for version in versions:
            entry[version] = {"mae": _interval(boot[f"{version}.{key}"], i)}
        out.append(entry)
    return out


def _age_summary(age: np.ndarray) -> dict[str, float | None]:
    if age.size == 0:
        return {"min": None, "max": None, "mean": None, "sd": None}
    sd = float(np.std(age, ddof=1)) if age.size > 1 else None
    return {"min": float(age.min()), "max": float(age.max()), "mean": float(age.mean()), "sd": sd}


def json_ready(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones (valid JSON)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def metrics_table(result: dict) -> pd.DataFrame:
    """Long table: one row per set x stratum x correction x metric."""
    rows = []
    for set_name, s in result["sets"].items():
        for version in ("uncorrected", "corrected"):
            for metric, r in s.get(version, {}).items():
                rows.append((set_name, "all", version, metric, s["n_with_age"], r))
            for kind, key in (("age_bins", "bin"), ("per_site", "site")):
                for entry in s.get(kind, []):
                    if version in entry:
                        stratum = f"{key}={entry[key]}"
                        rows.append((set_name, stratum, version, "mae", entry["n"],
                                     entry[version]["mae"]))
    return pd.DataFrame(
        [(a, b, c, d, n, r["estimate"], r["ci_low"], r["ci_high"]) for a, b, c, d, n, r in rows],
        columns=["set", "stratum", "correction", "metric", "n", "estimate", "ci_low", "ci_high"],
    )
