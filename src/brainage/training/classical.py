"""Train a classical model (:mod:`brainage.classical`) on every fold of a run.

Same run folder, splits, out-of-fold predictions, bias correction, intervals and model card
as the networks (:func:`brainage.training.results.finish_run`); one member per fold
(``fold-<k>/``). Features are computed once per scan; each fold's estimator sees only its
training subjects (hyper-parameters included).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import runs as rf
from brainage.classical.features import FeatureMaker
from brainage.classical.model import WEIGHTS, ClassicalModel, feature_matrix
from brainage.errors import InputError
from brainage.preprocessing.prepared import PreparedCohort
from brainage.training.config import TrainConfig
from brainage.training.results import finish_run, scan_roles


def check_classical(config: TrainConfig, prepared: PreparedCohort) -> FeatureMaker:
    """The feature maker for this cohort, or a clear error (no tissue maps, ...)."""
    assert config.classical is not None
    if config.repeats != 1:
        raise InputError(f"repeats={config.repeats}: a classical model is deterministic, so "
                         "repeats would fit the same model again. Fix: --set repeats=1.")
    return FeatureMaker.for_grid(config.classical.feature_spec(),
                                 prepared.spec.tissue_channels, prepared.spec.grid)


def train_classical_started(run: Path, config: TrainConfig,
                            started: tuple[PreparedCohort, Any, bool, Any]) -> Path:
    """Fit (or reload) each fold's estimator, then write the run's records."""
    prepared, splits, complete, _ = started
    if complete:
        warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
        return run
    assert config.classical is not None
    table = prepared.table.copy()
    maker = check_classical(config, prepared)
    t0 = time.perf_counter()
    X = feature_matrix(maker, table)  # (N, F), once for every fold
    seconds = {"features": round(time.perf_counter() - t0, 2), "fit": 0.0}
    fold_preds = []
    for fold in range(splits.n_folds):
        roles = scan_roles(table, splits, fold)
        member = rf.member_dir(run, fold, splits.n_folds)
        if (member / WEIGHTS).exists():
            model = ClassicalModel.load(member)
        else:
            train = ((roles == "train") & table["age"].notna()).to_numpy()
            t1 = time.perf_counter()
            model = ClassicalModel(config.classical.estimator, _fit(config, X[train],
                                   table["age"].to_numpy()[train]), maker)
            seconds["fit"] += round(time.perf_counter() - t1, 2)
            model.save(member)
        keep = (roles != "train").to_numpy()
        pred = model.predict_features(X[keep])
        fold_preds.append(pd.DataFrame({"scan": np.flatnonzero(keep), "fold": fold,
                                        "role": roles[keep].to_numpy(), "predicted_age": pred}))
    finish_run(run, config, prepared, splits, table, fold_preds,
               extra_metrics={"classical": {"estimator": config.classical.estimator,
                                            "features": int(X.shape[1]), "seconds": seconds}},
               model_name=config.classical.estimator)
    return run


def _fit(config: TrainConfig, X: np.ndarray, y: np.ndarray) -> Any:
    from brainage.classical import estimators

    assert config.classical is not None
    return estimators.fit(config.classical.estimator, X, y, config.seed)
