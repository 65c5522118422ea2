"""Train a classical model (:mod:`brainage.classical`) on every fold of a run.

Same run folder, splits, out-of-fold predictions, bias correction, intervals and model card
as the networks (:func:`brainage.training.results.finish_run`); one member per fold
(``fold-<k>/``). Features are computed once per scan and feature definition; each fold's
estimator sees only its training subjects (hyper-parameters included).

With ``classical.select`` each fold also *chooses* its features and estimator among the
candidates, by inner cross-validation on its own training subjects
(:func:`brainage.selection.select`), so the out-of-fold predictions (and the bias
correction and intervals fitted on them) score the choice as well: nested
cross-validation. Members may then differ; the choices are recorded in ``metrics.json``.
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


def check_classical(config: TrainConfig, prepared: PreparedCohort) -> dict[str, FeatureMaker]:
    """Candidate name -> feature maker for this cohort, or a clear error (no tissue maps)."""
    assert config.classical is not None
    if config.repeats != 1:
        raise InputError(f"repeats={config.repeats}: a classical model is deterministic, so "
                         "repeats would fit the same model again. Fix: --set repeats=1.")
    return {name: FeatureMaker.for_grid(spec.feature_spec(), prepared.spec.tissue_channels,
                                        prepared.spec.grid)
            for name, spec in config.classical.candidates().items()}


def train_classical_started(run: Path, config: TrainConfig,
                            started: tuple[PreparedCohort, Any, bool, Any]) -> Path:
    """Fit (or reload) each fold's estimator, then write the run's records."""
    prepared, splits, complete, _ = started
    if complete:
        warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
        return run
    assert config.classical is not None
    table = prepared.table.copy()
    specs = config.classical.candidates()
    makers = check_classical(config, prepared)
    t0 = time.perf_counter()
    X: dict[str, np.ndarray] = {}  # feature key -> (N, F), once for every fold
    for maker in makers.values():
        if maker.key not in X:
            X[maker.key] = feature_matrix(maker, table)
    seconds = {"features": round(time.perf_counter() - t0, 2), "fit": 0.0}
    y = table["age"].to_numpy(dtype=np.float64)
    fold_preds, chosen, members = [], [], []
    for fold in range(splits.n_folds):
        roles = scan_roles(table, splits, fold)
        member = rf.member_dir(run, fold, splits.n_folds)
        train = np.flatnonzero(((roles == "train") & table["age"].notna()).to_numpy())
        t1 = time.perf_counter()
        if (member / WEIGHTS).exists():
            model = ClassicalModel.load(member)
            chosen.append({"fold": fold, "chosen": _candidate_of(model, specs, makers)})
        else:
            name, scores = _choose(specs, makers, X, y, train, table, config)
            chosen.append({"fold": fold, "chosen": name, "inner_mae": scores})
            maker = makers[name]
            model = ClassicalModel(specs[name].estimator, _fit(
                specs[name].estimator, config.seed, X[maker.key][train], y[train]), maker)
            model.save(member)
        seconds["fit"] += round(time.perf_counter() - t1, 2)
        keep = (roles != "train").to_numpy()
        pred = model.predict_features(X[model.features.key][keep])
        fold_preds.append(pd.DataFrame({"scan": np.flatnonzero(keep), "fold": fold,
                                        "role": roles[keep].to_numpy(), "predicted_age": pred}))
        members.append((member.name, model, list(table["participant_id"].iloc[train])))
    _write_ood_reference(run, members, table)
    extra: dict[str, Any] = {"estimator": config.classical.estimator,
                             "features": int(next(iter(X.values())).shape[1]),
                             "seconds": seconds}
    if config.classical.select:
        extra["selection"] = {"candidates": list(specs), "inner_folds":
                              config.classical.select_folds, "per_fold": chosen,
                              "note": "each fold chose on its own training subjects; the "
                                      "out-of-fold metrics score the choice (nested CV)"}
    finish_run(run, config, prepared, splits, table, fold_preds,
               extra_metrics={"classical": extra}, model_name=config.classical.estimator)
    return run


def _choose(specs: dict[str, Any], makers: dict[str, FeatureMaker], X: dict[str, np.ndarray],
            y: np.ndarray, train: np.ndarray, table: pd.DataFrame, config: TrainConfig
            ) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest inner cross-validated MAE on `train` alone."""
    from brainage.selection import select

    if len(specs) == 1:
        return next(iter(specs)), {}
    assert config.classical is not None

    def candidate(name: str) -> Any:
        est, feats = specs[name].estimator, X[makers[name].key]

        def fit_predict(tr: np.ndarray, te: np.ndarray) -> np.ndarray:
            from brainage.classical import estimators

            return estimators.predict(est, _fit(est, config.seed, feats[tr], y[tr]), feats[te])
        return fit_predict

    groups = table["participant_id"].to_numpy()
    return select({n: candidate(n) for n in specs}, y, train,
                  config.classical.select_folds, config.seed, groups)


def _candidate_of(model: ClassicalModel, specs: dict[str, Any],
                  makers: dict[str, FeatureMaker]) -> str | None:
    """Which candidate a saved member is (on resume)."""
    for name, spec in specs.items():
        if spec.estimator == model.estimator and makers[name].key == model.features.key:
            return name
    return None


def _write_ood_reference(run: Path, members: list[tuple[str, Any, list[str]]],
                         table: pd.DataFrame) -> None:
    """The run's out-of-distribution reference: per member, its standardised features."""
    from brainage.inference.ood_fit import write_reference

    write_reference(run, members, table)


def _fit(estimator: str, seed: int, X: np.ndarray, y: np.ndarray) -> Any:
    from brainage.classical import estimators

    return estimators.fit(estimator, X, y, seed)
