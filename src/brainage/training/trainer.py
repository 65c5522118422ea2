"""The Lightning side of training: Trainer set-up, fitting one model, ranks.

:func:`fit_member` trains one model of a run (resuming from its ``last.ckpt``) with the
callbacks and loggers of :func:`build_trainer`; the rest of training needs no Lightning.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import lightning as L
import torch

from brainage.errors import InputError
from brainage.models import BrainAgeModel, create_model
from brainage.training.config import TrainConfig
from brainage.training.datamodule import BrainAgeDataModule
from brainage.training.module import RegressionTask

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
    return task_cls.from_config(config, monitor)


@dataclass(frozen=True)
class TrainerSettings:
    """What Lightning's Trainer needs from a run's config (training or GAN alike).

    Attributes:
        epochs, accelerator, devices, strategy, num_nodes, precision, deterministic,
        progress_bar, log_every_n_steps, tensorboard, early_stopping: The config fields of
        the same names (:class:`~brainage.training.config.TrainConfig`).
    """

    epochs: int
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32"
    deterministic: bool = True
    progress_bar: bool = True
    log_every_n_steps: int = 10
    tensorboard: bool = True
    early_stopping: int = 0

    @classmethod
    def of(cls, config: Any) -> TrainerSettings:
        """The settings of a config dataclass; fields it lacks keep their defaults."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)
                      if hasattr(config, f.name)})

    @property
    def on_cpu(self) -> bool:
        """Whether training runs on the CPU."""
        return self.accelerator == "cpu" or not torch.cuda.is_available()


def monitor_name(task_cls: type[RegressionTask], has_val: bool) -> str:
    """The metric that picks the best epoch: ``val_<metric>`` or ``train_<metric>``
    (``mae`` for regression, ``loss`` for contrastive pretraining)."""
    return f"{'val' if has_val else 'train'}_{task_cls.metric}"


def build_trainer(config: TrainConfig | TrainerSettings, member: Path, monitor: str | None,
                  callbacks: list[L.Callback] | None = None) -> L.Trainer:
    """Trainer with best/last checkpoints, early stopping, LR monitor and CSV logs.

    Args:
        config: A training config (or the settings taken from any config).
        member: Folder of the model (checkpoints and logs go below it).
        monitor: Metric the best checkpoint (and early stopping) minimises; None writes
            no ``best.ckpt`` (nothing held out: the last epoch is the result).
        callbacks: Extra callbacks.
    """
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    s = config if isinstance(config, TrainerSettings) else TrainerSettings.of(config)
    ckpt_dir = member / "checkpoints"
    best = [] if monitor is None else [  # first: it is `trainer.checkpoint_callback`
        ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor=monitor, mode="min",
                        save_top_k=1, enable_version_counter=False)]
    cbs: list[L.Callback] = [
        *best,
        # Every epoch (Lightning's save_last only follows improvements of the monitor).
        ModelCheckpoint(dirpath=ckpt_dir, filename="last", save_top_k=1, every_n_epochs=1,
                        enable_version_counter=False),
        LearningRateMonitor(logging_interval="epoch"),
        *(callbacks or []),
    ]
    if monitor is not None and s.early_stopping:
        cbs.append(EarlyStopping(monitor=monitor, mode="min", patience=s.early_stopping))
    loggers: list[Any] = [CSVLogger(member, name="logs")]
    if s.tensorboard and _has_tensorboard():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(member, name="tensorboard"))
    deterministic: bool | str = True if s.on_cpu else ("warn" if s.deterministic else False)
    return L.Trainer(
        max_epochs=s.epochs, accelerator=s.accelerator, devices=s.devices,
        strategy=s.strategy, num_nodes=s.num_nodes, precision=s.precision,  # type: ignore[arg-type]
        callbacks=cbs, logger=loggers, deterministic=deterministic,
        use_distributed_sampler=False, num_sanity_val_steps=0,
        enable_progress_bar=s.progress_bar, enable_model_summary=False,
        log_every_n_steps=s.log_every_n_steps, default_root_dir=member,
    )


def _has_tensorboard() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def read_checkpoint(checkpoint: Path) -> dict[str, Any]:
    """A brainage Lightning checkpoint, read with ``weights_only=True`` (never unpickled).

    Raises:
        InputError: a truncated or damaged file, or one holding objects other than tensors,
            numbers and plain containers (which brainage never loads: unpickling runs code).
    """
    fix = ("Fix: delete it and rerun the same command; that model restarts from its first "
           "epoch and the run's finished models are kept.")
    try:
        data = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # torch's own text suggests weights_only=False, i.e. running the file's code: not shown
        raise InputError(f"{checkpoint}: not a plain weights checkpoint (it holds other "
                         f"objects, which brainage never unpickles). {fix}") from None
    except (EOFError, RuntimeError, OSError, ValueError) as exc:
        raise InputError(f"{checkpoint}: damaged or cut short ({type(exc).__name__}), so "
                         f"training cannot resume from it. {fix}") from None
    if not isinstance(data, dict) or "state_dict" not in data:
        raise InputError(f"{checkpoint}: not a brainage training checkpoint (no state_dict). "
                         f"{fix}")
    return data


def best_weights(checkpoint: Path, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """A network's state dict from a brainage Lightning checkpoint (no unpickling).

    Args:
        checkpoint: A ``.ckpt`` file.
        prefix: Attribute of the LightningModule holding the network (``"generator."``);
            default the weight average (``ema_model.``) when present, else ``model.``.
    """
    state = read_checkpoint(checkpoint)["state_dict"]
    if prefix is None:
        prefix = "ema_model." if any(k.startswith("ema_model.") for k in state) else "model."
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def fit_quietly(trainer: L.Trainer, task: L.LightningModule, data: L.LightningDataModule,
                member: Path) -> Path | None:
    """``trainer.fit`` resuming from ``member/checkpoints/last.ckpt`` when it exists, with
    Lightning's hints for small cohorts silenced; returns the best checkpoint's path (None
    when no metric was monitored)."""
    last = member / "checkpoints" / "last.ckpt"
    if last.exists():
        read_checkpoint(last)  # a damaged file is refused with a clear message, not a traceback
    with warnings.catch_warnings():
        for pattern in QUIET:
            warnings.filterwarnings("ignore", pattern)
        trainer.fit(task, datamodule=data, ckpt_path=last if last.exists() else None,
                    weights_only=True)
    callbacks = trainer.checkpoint_callbacks
    found = [c for c in callbacks if getattr(c, "monitor", None) is not None]
    return Path(found[0].best_model_path) if found and found[0].best_model_path else None


def fit_checkpoint(config: TrainConfig, data: BrainAgeDataModule, member: Path,
                   task_cls: type[RegressionTask] = RegressionTask,
                   callbacks: list[L.Callback] | None = None,
                   init: dict[str, torch.Tensor] | None = None) -> Path | None:
    """Train one model of a run (resuming from its ``last.ckpt``).

    Args:
        init: Fine-tuning: the weights the network (and its weight average) start from; a
            ``last.ckpt`` being resumed overrides them.

    Returns:
        On rank 0, the checkpoint to keep: the best epoch's (by the validation metric of
        `task_cls`) or, without a validation set, the last epoch's; None on other ranks.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    has_val = data.val_set is not None and len(data.val_set) > 0
    if not has_val and config.split.val > 0:  # asked for, but the fold has none
        warnings.warn(f"{member}: no validation scans; early stopping is off and the last "
                      "epoch's weights are kept.", stacklevel=3)
    monitor = monitor_name(task_cls, has_val)
    task = make_task(config, monitor, task_cls)
    if init is not None:
        from brainage.training.finetune import load_initial

        load_initial([task.model, task.ema_model], init)
    # Pooling/intensity bins once per scan, not at every step (no augmentation: cached).
    task.inputs_staged = data.stage_inputs(task.model.input_stage)
    settings = TrainerSettings.of(config)
    if not has_val:  # nothing to stop early on
        settings = replace(settings, early_stopping=0)
    trainer = build_trainer(settings, member, monitor, callbacks)
    best = fit_quietly(trainer, task, data, member)
    if not trainer.is_global_zero:
        return None
    if best is None or not has_val:  # nothing held out to choose an epoch by: the end
        return member / "checkpoints" / "last.ckpt"
    return best


def fit_member(config: TrainConfig, data: BrainAgeDataModule, member: Path,
               task_cls: type[RegressionTask] = RegressionTask,
               callbacks: list[L.Callback] | None = None,
               init: dict[str, torch.Tensor] | None = None) -> BrainAgeModel | None:
    """Train one model (resuming from ``last.ckpt``); return its best weights on rank 0.

    `init` (fine-tuning) is the weights training starts from (:func:`fit_checkpoint`).

    Returns:
        The model with the best epoch's weights (by validation MAE; the last epoch's when
        there is no validation set), or None on ranks other than 0.
    """
    best = fit_checkpoint(config, data, member, task_cls, callbacks, init)
    if best is None:
        return None
    model = create_model(config.model.name, **config.model.kwargs)
    model.load_state_dict(best_weights(best))
    return model.eval()


def global_rank() -> int:
    """This process's rank in a (multi-node) DDP job; 0 when not distributed."""
    from lightning.pytorch.utilities import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0))


def barrier() -> None:
    """Wait for every DDP process (no-op when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
