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

from brainage.config import save_config, to_dict
from brainage.errors import InputError
from brainage.losses.registry import build_loss
from brainage.preprocessing.prepared import COHORT_FILE, PreparedCohort
from brainage.training.config import TrainConfig, load_train_config
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
    """Refuse a prepared cohort with no scan that can be trained on, or without the
    covariates the model takes."""
    if prepared.metadata is None:
        raise InputError(
            f"{prepared.root} holds no cohort table ({COHORT_FILE}), so the scans have no "
            "ages. Fix: pass the cohort the scans were prepared from (--cohort SOURCE).")
    if prepared.table["age"].notna().sum() == 0:
        raise InputError(f"no prepared scan has an age in {prepared.metadata}, so nothing "
                         "can be trained. Fix: add ages (participants.tsv).")
    if config is not None and config.use_sex and (
            "sex" not in prepared.table or prepared.table["sex"].isna().all()):
        raise InputError(f"use_sex is true but no scan has a sex in {prepared.metadata}. "
                         "Fix: add a sex column (M/F), or set use_sex=false.")


def start_run(run_dir: Any, config: TrainConfig) -> bool:
    """Write ``config.yaml`` for a new run, or check it matches when resuming.

    Returns:
        True when the run is already complete (``run.json`` exists).

    Raises:
        InputError: the folder holds a run with a different config.
    """
    from brainage import runs as rf

    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / rf.CONFIG
    if path.exists():
        old = load_train_config(path)
        if comparable(old) != comparable(config):
            raise InputError(
                f"{run_dir} already holds a run with another configuration ({path}). "
                "Fix: use a new run folder, or rerun with the same config to resume.")
    else:
        save_config(config, path)
    return (run_dir / rf.RUN_JSON).exists()


def comparable(config: TrainConfig) -> dict[str, Any]:
    """Config fields that change the result (display and hardware settings excluded)."""
    return {k: v for k, v in to_dict(config).items() if k not in NOT_COMPARED}
