"""Train on a prepared cohort: one model per fold (and seed), predictions, run folder.

``train_cohort(prepared, run_dir, config)`` is what ``brainage train`` calls. Each fold's
model is trained with early stopping on its validation subjects, the best epoch (lowest
val MAE) is kept, and every scan is then predicted only by models that never trained on
its subject (out-of-fold for k-fold; held-out for train/val/test). Everything is checked
before the run folder is written (:mod:`brainage.training.checks`); an interrupted run
resumes from ``last.ckpt`` when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import locks
from brainage import runs as rf
from brainage.data.cohort import Cohort
from brainage.data.datasets import augmentation
from brainage.data.splits_file import Splits, given_splits
from brainage.errors import InputError
from brainage.inference.ood_fit import write_reference
from brainage.models import BrainAgeModel, load_model, save_model
from brainage.models.io import WEIGHTS
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.training.checks import check_config, check_trainable, start_run
from brainage.training.config import TrainConfig
from brainage.training.datamodule import BrainAgeDataModule
from brainage.training.finetune import InitWeights, start_fine_tune
from brainage.training.module import RegressionTask
from brainage.training.results import finish_run, fold_predictions
from brainage.training.synthetic import plan_mix
from brainage.training.trainer import fit_member, global_rank

#: The lock file of a run folder being trained (removed when training ends).
LOCK_FILE = ".lock"


def fold_data(config: TrainConfig, table: pd.DataFrame, splits: Splits, fold: int
              ) -> BrainAgeDataModule:
    """DataModule of `fold`: scans with an age of its train and val subjects."""
    aug = config.augment
    transform = augmentation(aug.degrees, aug.scale, aug.translation, aug.flip, aug.kind) \
        if aug.enabled else None
    return BrainAgeDataModule.from_fold(table, splits, fold, config.batch_size,
                                        config.num_workers, config.seed, transform)


def split_params(config: TrainConfig) -> tuple[str, dict[str, Any]]:
    """Split method and parameters from ``config.split``."""
    s = config.split
    if s.method == "kfold":
        return "kfold", {"k": s.folds, "seed": s.seed, "val_fraction": s.val}
    if s.method == "holdout":
        return "holdout", {"val": s.val, "test": s.test, "seed": s.seed}
    if s.method == "sites":
        return "sites", {"val": s.val, "seed": s.seed}
    return "openbhb", {"val_fraction": s.val, "seed": s.seed}


def resolve_splits(run_dir: Path, prepared: PreparedCohort, config: TrainConfig,
                   splits: str | Path | Splits | None) -> Splits:
    """Splits of the run, checked against the cohort, without writing anything: given ones
    (object or file) win, then the run's own ``splits.json``, else new ones from
    ``config.split``."""
    from brainage.data.splits import load_or_make_splits, make_splits

    cohort = prepared.cohort()
    if splits is not None:
        return given_splits(splits, cohort)
    method, params = split_params(config)
    if (run_dir / rf.SPLITS).exists():
        return load_or_make_splits(run_dir / rf.SPLITS, cohort, method, **params)
    return make_splits(cohort, method, **params)


def train_cohort(prepared_dir: str | Path | PreparedCohort, run_dir: str | Path,
                 config: TrainConfig | None = None, splits: str | Path | Splits | None = None,
                 stage1: np.ndarray | None = None,
                 task_cls: type[RegressionTask] = RegressionTask,
                 cohort: Cohort | str | Path | None = None) -> Path:
    """Train (or resume) a run on a prepared cohort and write its run folder.

    Args:
        prepared_dir: Output of ``brainage prepare``.
        run_dir: Run folder to create (or resume).
        config: Training config; default: the CPU preset (:class:`TrainConfig` defaults).
        splits: A :class:`Splits` or a splits file; default the run's own, then (with
            ``config.synthetic``) the synthetic dataset's GAN splits, then ``config.split``.
        stage1: Cascade stage 2 only: stage-1 out-of-fold age of every prepared scan.
        task_cls: LightningModule class (``CascadeTask`` for stage 2).
        cohort: Ages/sex/site of the scans when the prepared folder has no ``cohort.tsv``
            (a Cohort, table or BIDS folder).

    Returns:
        The run folder.
    """
    config = config or TrainConfig()
    run = Path(run_dir)
    if config.synthetic.path is not None and stage1 is not None:
        raise InputError("synthetic subjects cannot join a cascade's stage 2 (they have no "
                         "stage-1 predictions). Fix: drop --synthetic, or train one stage.")
    splits = splits if splits is not None or (run / rf.SPLITS).exists() \
        else synthetic_splits(config)
    if config.stack is not None:
        raise InputError("a config with a stack: section trains several runs; it goes "
                         "through brainage.train / `brainage train` (or "
                         "brainage.training.stack.train_stack), not train_cohort.")
    prepared_dir, config, init = fine_tune(prepared_dir, config, cohort)
    with begin_run(prepared_dir, run, config, splits, task_cls, cohort,
                   plan=lambda p, s: plan_mix(config.synthetic, p, s)) as started:
        if config.classical is not None:
            from brainage.training.classical import train_classical_started

            return train_classical_started(run, config, started)
        return _train_started(run, config, started, stage1, task_cls, init)


def fine_tune(prepared_dir: str | Path | PreparedCohort, config: TrainConfig,
              cohort: Cohort | str | Path | None = None
              ) -> tuple[str | Path | PreparedCohort, TrainConfig, InitWeights | None]:
    """With ``config.init_from``: the opened cohort, the config with the source's model and
    the initial weights, all checked before anything is written
    (:mod:`brainage.training.finetune`); otherwise everything unchanged and None."""
    if config.init_from is None:
        if config.init_member is not None:
            raise InputError(f"init_member={config.init_member!r} is only used with "
                             "init_from. Fix: set init_from (--init-from RUN), or drop "
                             "init_member.")
        return prepared_dir, config, None
    if config.classical is not None:
        raise InputError("init_from starts a network from a run's weights; a classical model "
                         "has no weights to start from (it is fitted in seconds). Fix: drop "
                         "--init-from, or fine-tune a network preset.")
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared, config)
    config, init = start_fine_tune(config, prepared)
    return prepared, config, init


def _train_started(run: Path, config: TrainConfig,
                   started: tuple[PreparedCohort, Splits, bool, Any],
                   stage1: np.ndarray | None, task_cls: type[RegressionTask],
                   init: InitWeights | None = None) -> Path:
    """The body of :func:`train_cohort`, run while this process holds the run's lock."""
    prepared, the_splits, complete, mix = started
    if complete:
        warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
        return run
    table = prepared.table.copy()
    n_missing = int(table["age"].isna().sum())
    if n_missing:
        warnings.warn(f"{n_missing} scan(s) without an age are left out of training and "
                      "evaluation; they are still predicted (set 'unlabelled').", stacklevel=2)
    if stage1 is not None:
        table["stage1_age"] = np.asarray(stage1, dtype=float)
    models: list[tuple[int, BrainAgeModel]] = []
    for fold in range(the_splits.n_folds):
        fold_table, fold_splits = (table, the_splits) if mix is None \
            else mix.fold_data(table, the_splits, fold)
        for repeat in range(config.repeats):
            model = train_fold(config, fold_table, fold_splits, fold, run, task_cls, repeat,
                               None if init is None else init.state)
            if model is not None:  # rank 0 only
                models.append((fold, model))
    if global_rank() == 0 and len(models) == the_splits.n_folds * config.repeats:
        preds = [fold_predictions(m, table, the_splits, k, config.batch_size)
                 for k, m in models]
        names = rf.member_names(the_splits.n_folds, config.repeats)  # order of `models`
        write_reference(run, [(name, m, the_splits.folds[k].get("train", []))
                              for name, (k, m) in zip(names, models, strict=True)],
                        table, config.batch_size)
        finish_run(run, config, prepared, the_splits, table, preds,
                   synthetic=None if mix is None else mix.summary(),
                   init_from=None if init is None else init.record)
    return run


@contextmanager
def run_lock(run: Path) -> Iterator[None]:
    """One training process per run folder, so an accidental second start (or a cluster job
    started twice) is refused instead of training the same models again. The other ranks
    of a DDP job are the same job and take no lock; a killed process's lock is released by
    the system."""
    if global_rank() != 0:
        yield
        return
    with locks.hold(run / LOCK_FILE, what=f"training run {run}"):
        yield


@contextmanager
def begin_run(prepared_dir: str | Path | PreparedCohort, run: Path, config: TrainConfig,
              splits: str | Path | Splits | None, task_cls: type[RegressionTask],
              cohort: Cohort | str | Path | None = None,
              plan: Callable[[PreparedCohort, Splits], Any] | None = None
              ) -> Iterator[tuple[PreparedCohort, Splits, bool, Any]]:
    """Open and check the data, the config and the splits, then take the run's lock and
    start the run folder (``config.yaml``, ``splits.json``); nothing is written before
    every check passed. The lock is held for the ``with`` block: the whole training.

    Args:
        plan: Called with the cohort and the splits once both are checked, before anything
            is written (the synthetic-subject mix plans and checks itself there).

    Yields:
        The prepared cohort, the splits, whether the run is already complete, and what
        `plan` returned (None without it).
    """
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared, config)
    if config.classical is not None:
        from brainage.training.classical import check_classical

        check_classical(config, prepared)
    else:
        check_config(config, prepared.shape, task_cls, float(prepared.table["age"].median()))
    the_splits = resolve_splits(run, prepared, config, splits)
    if splits is not None and (run / rf.SPLITS).exists() and \
            Splits.from_json(run / rf.SPLITS).folds != the_splits.folds:
        raise InputError(f"{run} already holds a run trained on other splits "
                         f"({run / rf.SPLITS}). Fix: use a new run folder, or pass the same "
                         "splits to resume.")
    planned = plan(prepared, the_splits) if plan is not None else None
    with run_lock(run):
        if start_run(run, config):
            yield prepared, the_splits, True, planned
            return
        if splits is not None or not (run / rf.SPLITS).exists():
            the_splits.to_json(run / rf.SPLITS)
        yield prepared, the_splits, False, planned


def member_config(config: TrainConfig, repeat: int) -> TrainConfig:
    """The config of a fold's model number `repeat` (seed ``config.seed + repeat``)."""
    return dataclasses.replace(config, seed=config.seed + repeat) if repeat else config


def synthetic_splits(config: TrainConfig) -> Path | None:
    """The splits of the synthetic dataset's GAN run (its members' folds), when the config
    adds synthetic subjects and the dataset holds them; else None (``config.split``)."""
    path = config.synthetic.path
    found = Path(path) / rf.SPLITS if path is not None else None
    return found if found is not None and found.is_file() else None


def train_fold(config: TrainConfig, table: pd.DataFrame, splits: Splits, fold: int,
               run: Path, task_cls: type[RegressionTask] = RegressionTask, repeat: int = 0,
               init: dict[str, Any] | None = None) -> BrainAgeModel | None:
    """Train model `repeat` of fold `fold` (seed ``config.seed + repeat``) unless its weights
    are already saved, starting from `init` when fine-tuning; rank 0 gets the model."""
    member = rf.member_dir(run, fold, splits.n_folds, repeat, config.repeats)
    if (member / WEIGHTS).exists():
        return load_model(member)
    config = member_config(config, repeat)
    data = fold_data(config, table, splits, fold)
    model = fit_member(config, data, member, task_cls, init=init)
    if model is not None:
        save_model(model, member)
    return model
