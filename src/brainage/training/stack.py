"""A stack: member runs (networks, classical models) combined on out-of-fold predictions.

Layout: the stack's run folder holds ``members/<name>/`` (complete runs of their own, all
trained on the stack's ``splits.json``), ``stack.json`` (the combiner) and the usual run
files. The combiner is fitted on the members' out-of-fold predictions only, never on
predictions of subjects a member trained on. The stack's own out-of-fold predictions, which
its metrics, bias correction and conformal intervals use, are cross-fitted: the combiner
that predicts fold k was fitted on the other folds' out-of-fold predictions.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.data.cohort import Cohort
from brainage.data.splits_file import Splits
from brainage.errors import InputError
from brainage.estimators.stacking import STACK_JSON, combine, fit_combiner
from brainage.io import read_table, write_json
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.training.config import TrainConfig

MEMBERS = "members"


def member_folder(name: str) -> str:
    """Folder of a member preset/config inside the stack: ``members/<stem>``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(name).name.removesuffix(".yaml"))
    return f"{MEMBERS}/{stem}"


def _member_configs(config: TrainConfig) -> dict[str, TrainConfig]:
    from brainage.training.config import load_train_config

    assert config.stack is not None
    out = {}
    for name in config.stack.members:
        cfg = load_train_config(name)
        if cfg.stack is not None:
            raise InputError(f"stack member {name!r} is itself a stack. Fix: list its "
                             "members directly.")
        out[member_folder(name)] = cfg
    if len(out) != len(config.stack.members):
        raise InputError(f"stack.members={config.stack.members!r} name the same folder twice."
                         " Fix: give each member a different preset or file name.")
    return out


def _check_members(configs: dict[str, TrainConfig], prepared: PreparedCohort) -> None:
    from brainage.training.checks import check_config
    from brainage.training.classical import check_classical

    for cfg in configs.values():
        if cfg.classical is not None:
            check_classical(cfg, prepared)
        else:
            check_config(cfg, prepared.shape, age=float(prepared.table["age"].median()))


def train_stack(prepared_dir: str | Path | PreparedCohort, run_dir: str | Path,
                config: TrainConfig, splits: str | Path | Splits | None = None,
                cohort: Cohort | str | Path | None = None) -> Path:
    """Train every member on the same k-fold splits, then fit and record the combiner."""
    from brainage.training.checks import check_trainable, start_run
    from brainage.training.fit import resolve_splits, run_lock, train_cohort

    run = Path(run_dir)
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared, config)
    configs = _member_configs(config)
    _check_members(configs, prepared)  # every member checked before anything is written
    the_splits = resolve_splits(run, prepared, config, splits)
    if the_splits.method != "kfold":
        raise InputError(f"a stack needs out-of-fold predictions of every subject, but the "
                         f"splits are {the_splits.method!r}. Fix: --folds 5 (k-fold).")
    with run_lock(run):
        if start_run(run, config):
            warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
            return run
        if splits is not None or not (run / rf.SPLITS).exists():
            the_splits.to_json(run / rf.SPLITS)
        for folder, cfg in configs.items():
            train_cohort(prepared, run / folder, cfg, the_splits)
        _finish(run, config, prepared, the_splits, list(configs))
    return run


def member_predictions(run: Path, members: list[str], table: pd.DataFrame) -> pd.DataFrame:
    """(N, M) out-of-fold predictions of the members, rows in `table` order (+ fold)."""
    from brainage.preprocessing.cache import key_of

    stems = [key_of(r).stem for _, r in table.iterrows()]
    out = pd.DataFrame(index=range(len(table)))
    for m in members:
        preds = read_table(run / m / rf.PREDICTIONS)
        preds["scan"] = [key_of(r).stem for _, r in preds.iterrows()]
        lookup = preds.drop_duplicates("scan").set_index("scan")
        out[m] = lookup["predicted_age"].reindex(stems).to_numpy(dtype=float)
        if "fold" not in out:
            out["fold"] = lookup["fold"].reindex(stems).to_numpy()
            out["set"] = lookup["set"].reindex(stems).to_numpy()
    return out


def crossfit_stack(P: np.ndarray, age: np.ndarray, mp: pd.DataFrame, n_folds: int,
                   method: str, with_combiners: bool = False) -> Any:
    """Cross-fitted stack predictions: fold k's from a combiner fitted on the other folds'
    out-of-fold predictions.

    Args:
        P: (N, M) member out-of-fold predictions; age: (N,) ages (NaN = unknown).
        mp: :func:`member_predictions` (its ``set`` and ``fold`` columns).

    Returns:
        ((N,) predictions, NaN outside the out-of-fold rows; (N,) bool out-of-fold rows
        [, the fold combiners]).
    """
    oof = (mp["set"] == "test").to_numpy() & np.isfinite(age) & np.isfinite(P).all(axis=1)
    folds = pd.to_numeric(mp["fold"], errors="coerce").to_numpy()
    pred = np.full(len(age), np.nan)
    combiners = []
    for k in range(n_folds):
        fit_rows, rows = oof & (folds != k), oof & (folds == k)
        comb = fit_combiner(P[fit_rows], age[fit_rows], method)
        combiners.append(comb)
        pred[rows] = combine(P[rows], comb)
    return (pred, oof, combiners) if with_combiners else (pred, oof)


def _finish(run: Path, config: TrainConfig, prepared: PreparedCohort, splits: Splits,
            members: list[str]) -> None:
    from brainage.training.results import finish_run

    assert config.stack is not None
    table = prepared.table.copy()
    mp = member_predictions(run, members, table)
    P = mp[members].to_numpy()
    age = table["age"].to_numpy(dtype=float)
    pred, oof, crossfit = crossfit_stack(P, age, mp, splits.n_folds, config.stack.combiner,
                                         with_combiners=True)
    folds = pd.to_numeric(mp["fold"], errors="coerce").to_numpy()
    fold_preds = [pd.DataFrame({"scan": np.flatnonzero(oof & (folds == k)), "fold": k,
                                "role": "test", "predicted_age": pred[oof & (folds == k)]})
                  for k in range(splits.n_folds)]
    rest = ~oof & np.isfinite(P).all(axis=1)  # unlabelled scans: the final combiner
    final = fit_combiner(P[oof], age[oof], config.stack.combiner)
    if rest.any():
        fold_preds.append(pd.DataFrame({"scan": np.flatnonzero(rest), "fold": -1,
                                        "role": "unlabelled",
                                        "predicted_age": combine(P[rest], final)}))
    record = {"members": members, "combiner": config.stack.combiner, **final,
              "fitted_on": f"out-of-fold predictions of {int(oof.sum())} scans",
              "crossfit": crossfit}
    write_json(run / STACK_JSON, record)
    member_mae = {m: float(np.mean(np.abs(P[oof, i] - age[oof])))
                  for i, m in enumerate(members)}
    finish_run(run, config, prepared, splits, table, fold_preds,
               extra_metrics={"stack": {"weights": dict(zip(members, final["weights"],
                                                            strict=True)),
                                        "intercept": final["intercept"],
                                        "member_oof_mae": member_mae}},
               model_name="stack", kind=rk.STACK, members=members)
