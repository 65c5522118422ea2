"""Everything about a training run that can be checked before anything is written.

``brainage train`` builds the model, loss, optimiser and schedule of the config on torch's
``meta`` device (no memory, no computation), runs one forward pass and the loss on an input
of the prepared grid's shape there, and checks the data it needs; only then does it create
the run folder. A typo in ``model.kwargs`` therefore leaves nothing behind, and the corrected
command starts a fresh run instead of being refused as "another configuration".
"""

from __future__ import annotations

from typing import Any

import torch

from brainage.config import load_config, save_config, to_dict
from brainage.data.splits_file import synthetic_subjects
from brainage.errors import InputError
from brainage.losses.registry import build_loss
from brainage.preprocessing.prepared import COHORT_FILE, PreparedCohort
from brainage.training.config import TrainConfig
from brainage.training.module import RegressionTask
from brainage.training.optim import build_optimizer, build_schedule

#: Config fields that do not change the result (display and hardware settings).
NOT_COMPARED = {"progress_bar", "log_every_n_steps", "tensorboard", "num_workers", "devices",
                "num_nodes", "strategy", "accelerator"}


def check_config(config: TrainConfig, shape: tuple[int, ...],
                 task_cls: type[RegressionTask] = RegressionTask, age: float = 50.0) -> None:
    """Build every component of `config` on the meta device and run it on `shape` inputs.

    Args:
        config: The training config.
        shape: Spatial shape of the prepared arrays.
        task_cls: The LightningModule class that will train it.
        age: A typical training age (the loss checks its targets).

    Raises:
        BrainAgeError: an unknown name or argument, a loss the model cannot feed, an input
            grid the model cannot take.
    """
    from brainage.models import check_kind
    from brainage.training.trainer import make_task

    check_kind(config.model.name, "age")  # not a GAN's generator or critic
    with torch.device("meta"):
        monitor = f"train_{task_cls.metric}"
        task = make_task(config, monitor, task_cls)
        opt = build_optimizer([p for p in task.parameters() if p.requires_grad],
                              to_dict(config.optim))
        build_schedule(opt, to_dict(config.scheduler), config.epochs, monitor)
        model = task.model
        x = torch.empty(2, model.in_channels, *shape)  # (B, C, D, H, W)
        try:
            outputs = task.example_outputs(x)
        except RuntimeError as exc:  # a check of values, which meta tensors do not have
            if "meta" not in str(exc):
                raise
            return
    # The loss checks its targets' values too: run it for real on outputs of the same shapes.
    criterion = build_loss(config.loss.name, model.age_bins, config.model.name,
                           **config.loss.kwargs)
    criterion({k: torch.zeros(v.shape) for k, v in outputs.items()}, torch.full((2,), age))


def check_trainable(prepared: PreparedCohort, config: TrainConfig | None = None) -> None:
    """Refuse a prepared cohort with no scan that can be trained on, without the covariates
    the model takes, or made of synthetic subjects (they may only be added to training)."""
    if prepared.metadata is None:
        raise InputError(
            f"{prepared.root} holds no cohort table ({COHORT_FILE}), so the scans have no "
            "ages. Fix: pass the cohort the scans were prepared from (--cohort SOURCE).")
    synthetic = synthetic_subjects(prepared.cohort())
    if synthetic:
        raise InputError(
            f"{prepared.root} holds {len(synthetic)} synthetic subject(s) (brainage gan "
            "synthesize); trained on directly, its splits would validate and test on "
            "synthetic brains. Fix: train on the real prepared cohort and add these to its "
            f"training folds with --synthetic {prepared.root}.")
    if prepared.table["age"].notna().sum() == 0:
        raise InputError(f"no prepared scan has an age in {prepared.metadata}, so nothing "
                         "can be trained. Fix: add ages (participants.tsv).")
    if config is not None and config.use_sex and (
            "sex" not in prepared.table or prepared.table["sex"].isna().all()):
        raise InputError(f"use_sex is true but no scan has a sex in {prepared.metadata}. "
                         "Fix: add a sex column (M/F), or set use_sex=false.")


def start_run(run_dir: Any, config: Any) -> bool:
    """Write ``config.yaml`` for a new run, or check it matches when resuming.

    Works for any config dataclass (a :class:`TrainConfig`, a GAN config): the saved file
    is read back as the same class.

    Returns:
        True when the run is already complete (``run.json`` exists).

    Raises:
        InputError: the folder holds a run with a different config.
    """
    from brainage import runs as rf

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / rf.CONFIG
    if path.exists():
        old = load_config(type(config), path)
        if comparable(old) != comparable(config):
            raise InputError(
                f"{run_dir} already holds a run with another configuration ({path}). "
                "Fix: use a new run folder, or rerun with the same config to resume.")
    else:
        save_config(config, path)
    return (run_dir / rf.RUN_JSON).exists()


def comparable(config: Any) -> dict[str, Any]:
    """Config fields that change the result (display and hardware settings excluded)."""
    return {k: v for k, v in to_dict(config).items() if k not in NOT_COMPARED}


def check_gan_config(config: Any, shape: tuple[int, ...]) -> None:
    """Build a GAN config's networks, optimisers and schedules on the meta device and run
    them on `shape` inputs (one-channel volumes of the prepared grid).

    Args:
        config: A :class:`~brainage.training.gan_config.GanConfig`.
        shape: Spatial shape of the prepared arrays.

    Raises:
        BrainAgeError: an unknown name or argument, a network of the wrong kind, or a grid
            whose axes the generator cannot restore (not multiples of ``2 ** depth``).
    """
    from brainage.training.gan import GanTask

    with torch.device("meta"):
        task = GanTask.from_config(config)
        task.build_optimizers(config.epochs)
        if task.generator.in_channels != 1:
            raise InputError(f"generator.kwargs.in_channels={task.generator.in_channels}: "
                             "prepared volumes have one channel. Fix: drop in_channels.")
        fake = task.generator(torch.empty(2, 1, *shape))  # (B, 1, D, H, W)
        try:
            for net in (task.critic, task.regressor):
                if net is not None:
                    net(fake)
        except RuntimeError as exc:  # a check of values, which meta tensors do not have
            if "meta" not in str(exc):
                raise
