"""Train on a prepared cohort with Lightning: one model per fold, predictions, run folder.

``train_cohort(prepared, run_dir, config)`` is what ``brainage train`` calls. Each fold's
model is trained with early stopping on its validation subjects, the best epoch (lowest
val MAE) is kept, and every scan is then predicted only by models that never trained on
its subject (out-of-fold for k-fold; held-out for train/val/test). An interrupted run
resumes from ``last.ckpt`` when the same command is run again.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from brainage.data.cohort import Cohort
from brainage.data.datamodule import BrainAgeDataModule
from brainage.data.datasets import augmentation
from brainage.data.prepared import COHORT_FILE, PreparedCohort, open_prepared
from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError
from brainage.models import BrainAgeModel, create_model, load_model, save_model
from brainage.models.io import WEIGHTS
from brainage.tasks import run_folder as rf
from brainage.tasks.config import TrainConfig
from brainage.tasks.regression import RegressionTask
from brainage.tasks.results import finish_run, fold_predictions

#: Lightning hints that are noise for brainage's small cohorts.
QUIET = (".*does not have many workers.*", ".*smaller than the logging interval.*",
         ".*isinstance\\(treespec, LeafSpec\\).*",
         ".*Total length of `list` across ranks is zero.*",  # no validation set, by choice
         ".*module\\(s\\) in eval mode at the start of training.*")  # the frozen EMA copy


class _NoAdverts(logging.Filter):
    """Drop Lightning's "Tip: try installing litlogger" line printed on every fit."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdverts())


def make_task(config: TrainConfig, monitor: str, task_cls: type[RegressionTask] = RegressionTask
              ) -> RegressionTask:
    """The LightningModule for `config` (plain-dict hyper-parameters)."""
    from brainage.config import to_dict

    return task_cls(model=to_dict(config.model), loss=to_dict(config.loss),
                    optim=to_dict(config.optim), scheduler=to_dict(config.scheduler),
                    monitor=monitor, channels_last=config.channels_last, ema=config.ema,
                    compile=config.compile)


def _on_cpu(config: TrainConfig) -> bool:
    return config.accelerator == "cpu" or not torch.cuda.is_available()


def build_trainer(config: TrainConfig, member: Path, has_val: bool,
                  callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """Trainer with best/last checkpoints, early stopping, LR monitor and CSV logs."""
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    monitor = "val_mae" if has_val else "train_mae"
    ckpt_dir = member / "checkpoints"
    cbs: list[L.Callback] = [  # best first: it is `trainer.checkpoint_callback`
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min",
                        save_top_k=1, enable_version_counter=False),
        # Every epoch (Lightning's save_last only follows improvements of the monitor).
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, every_n_epochs=1,
                        enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
        *(callbacks or []),
    ]
    if has_val and config.early_stopping:
        cbs.append(EarlyStopping(monitor=monitor, mode="min", patience=config.early_stopping))
    loggers: list[Any] = [CSVLogger(member, name="logs")]
    if config.tensorboard and _has_tensorboard():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(member, name="tensorboard"))
    deterministic: bool | str = True if _on_cpu(config) else (
        "warn" if config.deterministic else False)
    return L.Trainer(
        max_epochs=config.epochs, accelerator=config.accelerator, devices=config.devices,
        strategy=config.strategy, num_nodes=config.num_nodes, precision=config.precision,
        callbacks=cbs, logger=loggers, deterministic=deterministic,
        use_distributed_sampler=False, num_sanity_val_steps=0,
        enable_progress_bar=config.progress_bar, enable_model_summary=False,
        log_every_n_steps=config.log_every_n_steps, default_root_dir=member,
    )


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def best_weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The network's state dict from a brainage Lightning checkpoint (no unpickling)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    prefix = "ema_model." if any(k.startswith("ema_model.") for k in state) else "model."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def fit_member(config: TrainConfig, data: BrainAgeDataModule, member: Path,
               task_cls: type[RegressionTask] = RegressionTask,
               callbacks: list[L.Callback] | None = None) -> BrainAgeModel | None:
    """Train one model (resuming from ``last.ckpt``); return its best weights on rank 0.

    Returns:
        The model with the best epoch's weights (by validation MAE; the last epoch's when
        there is no validation set), or None on ranks other than 0.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    has_val = data.val_set is not None and len(data.val_set) > 0
    if not has_val and config.split.val > 0:  # asked for, but the fold has none
        warnings.warn(f"{member}: no validation scans; early stopping is off and the last "
                      "epoch's weights are kept.", stacklevel=2)
    task = make_task(config, "val_mae" if has_val else "train_mae", task_cls)
    # Pooling/intensity bins once per scan, not at every step (no augmentation: cached).
    task.inputs_staged = data.stage_inputs(task.model.input_stage)
    trainer = build_trainer(config, member, has_val, callbacks)
    last = member / "checkpoints" / "last.ckpt"
    with warnings.catch_warnings():
        for pattern in QUIET:
            warnings.filterwarnings("ignore", pattern)
        trainer.fit(task, datamodule=data, ckpt_path=last if last.exists() else None,
                    weights_only=True)
    if not trainer.is_global_zero:
        return None
    best = Path(trainer.checkpoint_callback.best_model_path or member / "checkpoints/best.ckpt")
    if not has_val:  # nothing held out to choose an epoch by: the end of the schedule
        best = last
    model = create_model(config.model.name, **config.model.kwargs)
    model.load_state_dict(best_weights(best))
    return model.eval()


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


def prepare_splits(run_dir: Path, prepared: PreparedCohort, config: TrainConfig,
                   splits: str | Path | Splits | None) -> Splits:
    """Splits of the run: given ones (object or file) win, else ``run_dir/splits.json``."""
    from brainage.data.splits import load_or_make_splits

    cohort = prepared.cohort()
    if isinstance(splits, Splits):
        splits.check(cohort, "given splits")
        splits.to_json(run_dir / rf.SPLITS)
        return splits
    if splits is not None:
        given = Splits.from_json(splits)
        given.check(cohort, str(splits))
        given.to_json(run_dir / rf.SPLITS)
        return given
    method, params = split_params(config)
    return load_or_make_splits(run_dir / rf.SPLITS, cohort, method, **params)


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
        splits: A :class:`Splits` or a splits file; default ``config.split`` (saved once).
        stage1: Cascade stage 2 only: stage-1 out-of-fold age of every prepared scan.
        task_cls: LightningModule class (``CascadeTask`` for stage 2).
        cohort: Ages/sex/site of the scans when the prepared folder has no ``cohort.tsv``
            (a Cohort, table or BIDS folder).

    Returns:
        The run folder.
    """
    config = config or TrainConfig()
    run = Path(run_dir)
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared)
    if rf.start_run(run, config):
        warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
        return run
    table = prepared.table.copy()
    n_missing = int(table["age"].isna().sum())
    if n_missing:
        warnings.warn(f"{n_missing} scan(s) without an age are left out of training and "
                      "evaluation; they are still predicted (set 'unlabelled').", stacklevel=2)
    if stage1 is not None:
        table["stage1_age"] = np.asarray(stage1, dtype=float)
    the_splits = prepare_splits(run, prepared, config, splits)
    models: list[tuple[int, BrainAgeModel]] = []
    for fold in range(the_splits.n_folds):
        for repeat in range(config.repeats):
            model = train_fold(config, table, the_splits, fold, run, task_cls, repeat)
            if model is not None:  # rank 0 only
                models.append((fold, model))
    if global_rank() == 0 and len(models) == the_splits.n_folds * config.repeats:
        preds = [fold_predictions(m, table, the_splits, k, config.batch_size)
                 for k, m in models]
        finish_run(run, config, prepared, the_splits, table, preds)
    return run


def train_fold(config: TrainConfig, table: pd.DataFrame, splits: Splits, fold: int,
               run: Path, task_cls: type[RegressionTask] = RegressionTask, repeat: int = 0
               ) -> BrainAgeModel | None:
    """Train model `repeat` of fold `fold` (seed ``config.seed + repeat``) unless its weights
    are already saved; rank 0 gets the model."""
    member = rf.member_dir(run, fold, splits.n_folds, repeat, config.repeats)
    if (member / WEIGHTS).exists():
        return load_model(member)
    if repeat:
        config = dataclasses.replace(config, seed=config.seed + repeat)
    data = fold_data(config, table, splits, fold)
    model = fit_member(config, data, member, task_cls)
    if model is not None:
        save_model(model, member)
    return model


def global_rank() -> int:
    """This process's rank in a (multi-node) DDP job; 0 when not distributed."""
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0))


def barrier() -> None:
    """Wait for every DDP process (no-op when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


def check_trainable(prepared: PreparedCohort) -> None:
    """Refuse a prepared cohort with no scan that can be trained on."""
    if prepared.metadata is None:
        raise BrainAgeError(
            f"{prepared.root} holds no cohort table ({COHORT_FILE}), so the scans have no "
            "ages. Fix: pass the cohort the scans were prepared from (--cohort SOURCE).")
    if prepared.table["age"].notna().sum() == 0:
        raise BrainAgeError(f"no prepared scan has an age in {prepared.metadata}, so nothing "
                            "can be trained. Fix: add ages (participants.tsv).")
