"""After training: predictions that no model trained on, metrics, bias correction, run files.

Every fold's model predicts the scans whose subject it did *not* train on; those are
combined into one row per scan by :func:`brainage.data.predictions.aggregate`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.config import to_dict
from brainage.data.datasets import ScanDataset
from brainage.data.predictions import aggregate, write_predictions
from brainage.data.splits_file import Splits
from brainage.evaluation.oof import fit_bias, fit_intervals, set_metrics, stage2_spread
from brainage.io import write_json
from brainage.models.base import BrainAgeModel
from brainage.models.engine import predict_dataset
from brainage.preprocessing.prepared import PreparedCohort
from brainage.training.config import TrainConfig


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
               extra_metrics: dict[str, Any] | None = None,
               synthetic: dict[str, Any] | None = None,
               init_from: dict[str, Any] | None = None, model_name: str | None = None,
               kind: str = rk.MODELS, members: list[str] | None = None) -> pd.DataFrame:
    """Write predictions, metrics, bias correction, spec, model card, then ``run.json``.

    `synthetic` (:meth:`~brainage.training.synthetic.SyntheticMix.summary`) is recorded in
    the model card when synthetic subjects were added to training; `init_from` (the
    fine-tuning record of :mod:`brainage.training.finetune`) in the card and ``run.json``.
    `model_name`, `kind` and `members` describe runs that are not one network per fold
    (classical models, stacks).
    """
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
    info = rf.RunInfo(kind=kind,
                      members=members or rf.member_names(splits.n_folds, config.repeats),
                      training_range=training_range(table, splits),
                      spec_hash=prepared.spec_hash, input_shape=list(prepared.shape),
                      extra={"model": model_name or config.model.name,
                             **({"init_from": init_from} if init_from else {})})
    card = model_card(config, info, data_summary(table, splits), prepared.spec, metrics, bias)
    if synthetic is not None:
        card["synthetic"] = synthetic
    if init_from is not None:
        card["init_from"] = init_from
    write_json(run / rf.MODEL_CARD, card)
    rf.write_run_info(run, info)
    return preds


def _card_model(config: TrainConfig, info: rf.RunInfo) -> dict[str, Any]:
    """What the run's members are: a network, a classical model or a stack."""
    base = {"members": info.members, "kind": info.kind}
    if config.stack is not None:
        return {"name": "stack", "stack": to_dict(config.stack), **base}
    if config.classical is not None:
        return {"name": config.classical.estimator, "classical": to_dict(config.classical),
                **base}
    return {"name": config.model.name, "kwargs": config.model.kwargs, **base}


def _card_training(config: TrainConfig) -> dict[str, Any]:
    if config.stack is not None or config.classical is not None:  # no network training
        return {"split": to_dict(config.split), "seed": config.seed}
    return {"loss": to_dict(config.loss), "optim": to_dict(config.optim),
            "epochs": config.epochs, "batch_size": config.batch_size,
            "precision": config.precision, "seed": config.seed}


def model_card(config: TrainConfig, info: rf.RunInfo, data_summary: dict[str, Any],
               spec: Any, metrics: dict[str, Any],
               bias: dict[str, Any] | None) -> dict[str, Any]:
    """Model card: training data, preprocessing, input, training, metrics, use, versions
    (docs/model-card.md)."""
    return {
        "format": "brainage-model-card", "brainage_version": rf.__version__,
        "environment": rf.environment(),
        "model": _card_model(config, info),
        "training_data": data_summary,
        "preprocessing": {"spec": spec.to_dict(), "hash": info.spec_hash,
                          "file": rf.PREPROCESSING},
        "input": {"shape": info.input_shape, "dtype": "float32 (stored float16)"},
        "training": _card_training(config),
        "metrics": metrics,
        "bias_correction": bias,
        "intended_use": rf.INTENDED_USE,
    }
