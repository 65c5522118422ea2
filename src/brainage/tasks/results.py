"""After training: predictions that no model trained on, metrics, bias correction, run files.

Every fold's model predicts the scans whose subject it did *not* train on. A scan's final
prediction is the mean over the models that held it out, preferring test roles (one model
per scan in k-fold: out-of-fold), then validation, then unlabelled subjects (all models).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.datasets import ScanDataset
from brainage.data.prepared import PreparedCohort
from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError
from brainage.evaluation import metrics as M
from brainage.inference.engine import predict_dataset
from brainage.io import write_json
from brainage.models.base import BrainAgeModel
from brainage.tasks import run_folder as rf
from brainage.tasks.config import TrainConfig

#: Lower is preferred when a scan is predicted under several roles.
ROLE_PRIORITY = {"test": 0, "internal_test": 0, "external_test": 0, "val": 1,
                 "unlabelled": 2, "unassigned": 2}
EVAL_ROLES = ("test", "internal_test", "external_test", "val")
KEEP_COLUMNS = ("participant_id", "session", "run", "age", "sex", "site", "group")


def scan_roles(table: pd.DataFrame, splits: Splits, fold: int) -> pd.Series:
    """Role of each scan's subject in `fold` (``unlabelled``/``unassigned`` if none)."""
    role = pd.Series("unassigned", index=table.index, dtype=object)
    role[table["participant_id"].isin(splits.unlabelled).to_numpy()] = "unlabelled"
    for name, ids in splits.folds[fold].items():
        role[table["participant_id"].isin(ids).to_numpy()] = name
    return role


def fold_predictions(model: BrainAgeModel, table: pd.DataFrame, splits: Splits, fold: int,
                     batch_size: int = 8) -> pd.DataFrame:
    """Predictions of fold `fold`'s model for every scan it did not train on.

    Returns:
        Columns ``scan`` (row of `table`), ``fold``, ``role``, ``predicted_age``.
    """
    roles = scan_roles(table, splits, fold)
    keep = (roles != "train").to_numpy()
    sub = table[keep]
    pred = predict_dataset(model, ScanDataset.from_table(sub), batch_size)
    return pd.DataFrame({"scan": np.flatnonzero(keep), "fold": fold,
                         "role": roles[keep].to_numpy(), "predicted_age": pred})


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
    from brainage.tasks.cascade import bin_spread

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


def fit_intervals(preds: pd.DataFrame, fitted_on: str | None, alpha: float = 0.1,
                  seed: int = 0) -> tuple[Any, dict[str, Any]]:
    """Split-conformal interval calibration on held-out predictions, with a coverage check.

    The check calibrates on a random half of the held-out subjects and measures coverage
    on the other half (repeated 20 times), so the reported coverage is honest.

    Returns:
        ``(ConformalInterval or None, metrics dict)``.
    """
    from brainage.evaluation.uncertainty import ConformalInterval, coverage

    name = fitted_on or ("val" if (preds["set"] == "val").any() else "test")
    rows = preds[(preds["set"] == name) & preds["age"].notna()]
    try:
        cal = ConformalInterval(alpha=alpha).fit(rows["age"], rows["predicted_age"])
    except BrainAgeError as exc:
        warnings.warn(f"no predictive intervals stored: {exc}", stacklevel=2)
        return None, {}
    rng = np.random.default_rng(seed)
    covs, widths = [], []
    y, p = rows["age"].to_numpy(float), rows["predicted_age"].to_numpy(float)
    for _ in range(20):
        idx = rng.permutation(len(y))
        half, rest = idx[: len(y) // 2], idx[len(y) // 2:]
        check = ConformalInterval(alpha=alpha, min_subjects=10)
        try:
            lo, hi = check.fit(y[half], p[half]).predict_interval(p[rest])
        except BrainAgeError:
            break
        c = coverage(y[rest], lo, hi)
        covs.append(c["coverage"])
        widths.append(c["mean_width"])
    info = {"procedure": "split-conformal (absolute residuals)", "nominal": 1 - alpha,
            "fitted_on": name, "n_calibration": cal.n_calibration_,
            "half_width": cal.quantile_,
            "check_coverage": float(np.mean(covs)) if covs else None,
            "check_mean_width": float(np.mean(widths)) if widths else None,
            "check": "calibrate on a random half of the held-out subjects, cover the other "
                     "half; mean of 20 repeats"}
    return cal, info


def training_range(table: pd.DataFrame, splits: Splits) -> list[float]:
    """``[min, max]`` age of the scans any fold trained on."""
    ids = {s for f in splits.folds for s in f.get("train", [])}
    ages = table.loc[table["participant_id"].isin(ids), "age"].dropna()
    return [float(ages.min()), float(ages.max())]


def data_summary(table: pd.DataFrame, splits: Splits) -> dict[str, Any]:
    """Training data summary for the model card."""
    ages = table["age"].dropna()
    return {
        "scans": int(len(table)), "subjects": int(table["participant_id"].nunique()),
        "scans_with_age": int(len(ages)),
        "sites": sorted(str(s) for s in table["site"].dropna().unique()) if "site" in table
        else [],
        "age_range": [float(ages.min()), float(ages.max())], "age_mean": float(ages.mean()),
        "splits": {"method": splits.method, "folds": splits.n_folds,
                   "roles": [{r: len(ids) for r, ids in f.items()} for f in splits.folds]},
    }


def finish_run(run: Path, config: TrainConfig, prepared: PreparedCohort, splits: Splits,
               table: pd.DataFrame, fold_preds: list[pd.DataFrame],
               extra_metrics: dict[str, Any] | None = None) -> pd.DataFrame:
    """Write predictions, metrics, bias correction, spec, model card, then ``run.json``."""
    from brainage.evaluation.predictions import write_predictions

    preds = aggregate(table, fold_preds)
    corrector, fitted_on = fit_bias(preds)
    metrics: dict[str, Any] = {"uncorrected": set_metrics(preds), **(extra_metrics or {})}
    bias = None
    if corrector is not None:
        with warnings.catch_warnings():  # the fitting set is corrected too; recorded below
            warnings.simplefilter("ignore")
            preds["corrected_age"] = corrector.transform(preds["age"], preds["predicted_age"])
        preds["corrected_gap"] = preds["corrected_age"] - preds["age"]
        metrics["corrected"] = set_metrics(preds, "corrected_age")
        metrics["bias_correction"] = {
            "method": "beheshti", "fitted_on": fitted_on, "formula": corrector.formula(),
            "note": f"corrected metrics of the '{fitted_on}' set are optimistic (fitted on it)"}
        bias = {**corrector.to_dict(), "fitted_on": fitted_on}
        write_json(run / rf.BIAS, bias)
    calibration, interval_info = fit_intervals(preds, fitted_on)
    if calibration is not None:
        preds["interval_low"], preds["interval_high"] = calibration.predict_interval(
            preds["predicted_age"])
        metrics["intervals"] = interval_info
        write_json(run / rf.INTERVALS, {**calibration.to_dict(), **interval_info})
    if "stage1_age" in preds:
        metrics["bin_spread"] = stage2_spread(preds)
    write_predictions(run / rf.PREDICTIONS, preds)
    write_json(run / rf.METRICS, metrics)
    prepared.spec.save(run / rf.PREPROCESSING)
    info = rf.RunInfo(kind="models", members=rf.member_names(splits.n_folds, config.repeats),
                      training_range=training_range(table, splits),
                      spec_hash=prepared.spec_hash, input_shape=list(prepared.shape),
                      extra={"model": config.model.name})
    card = rf.model_card(config, info, data_summary(table, splits), prepared.spec, metrics, bias)
    write_json(run / rf.MODEL_CARD, card)
    rf.write_run_info(run, info)
    return preds
