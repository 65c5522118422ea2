"""Typed training configuration: dataclasses that YAML files and ``--set`` flags override.

The defaults of :class:`TrainConfig` are the CPU preset used by the real-data benchmark
(the ``quickstart`` preset spells the same values out). The ``tsan`` and ``tsan_stage2``
presets are the published TSAN recipes (Liu et al., MICCAI 2020):

* stage 1: Adam (amsgrad) lr 1e-3, weight decay 5e-4;
* stage 2: SGD lr 1e-5, weight decay 5e-4;
* both: ReduceLROnPlateau on validation MAE (factor 0.5, patience 5), early stop after 20
  epochs without improvement, at most 150 epochs, batch 32, best checkpoint by val MAE.

Load with :func:`load_train_config` (defaults, then a preset or YAML file with the files it
``inherits:``, then ``key=value`` overrides). Unlike a plain recursive merge, a layer that
names the model or loss defines its ``kwargs`` completely, so ``model: {name: resnet18_3d}``
does not inherit SFCN's arguments and a saved ``config.yaml`` loads exactly.

The sections live by concern: the network's in :mod:`brainage.training.network_config`, the
estimators that replace it in :mod:`brainage.training.estimator_config`, the data's (splits,
synthetic subjects) here with :class:`TrainConfig`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from brainage.config import load_config
from brainage.errors import InputError
from brainage.training.estimator_config import ClassicalSpec, StackSpec
from brainage.training.network_config import (
    AugmentSpec,
    ContrastiveSpec,
    LossSpec,
    ModelSpec,
    OptimSpec,
    SchedulerSpec,
)

# The section classes are part of this module's public names: TrainConfig is made of them.
__all__ = ["CPU_MODEL", "STAGE2_MODEL", "AugmentSpec", "ClassicalSpec", "ContrastiveSpec",
           "LossSpec", "ModelSpec", "OptimSpec", "SchedulerSpec", "SplitSpec", "StackSpec",
           "SyntheticSpec", "TrainConfig", "load_train_config", "stage2_defaults"]

#: Model name of the TSAN second stage (the cascade's default stage 2).
STAGE2_MODEL = "tsan_stage2"
#: SFCN of the CPU preset: widths (the paper's are 32, 64, 128, 256, 256, 64) on 6 mm maps of
#: 8 intensity bins (soft tissue fractions; docs/training.md).
CPU_MODEL = {"channels": [16, 32, 64, 64], "input_pool": 3, "input_bins": 8,
             "age_range": [10, 90], "dropout": 0.2}


@dataclass
class SplitSpec:
    """How subjects are split when the run folder has no ``splits.json`` yet.

    Attributes:
        method: ``holdout`` (train/val/test), ``kfold``, ``sites`` or ``openbhb``.
        folds: Number of folds for ``kfold``.
        val: Validation fraction (of all subjects for holdout, of each fold's training
            subjects for kfold); used for early stopping and the best checkpoint.
        test: Test fraction (holdout only).
        seed: Seed of the split.
    """

    method: Literal["holdout", "kfold", "sites", "openbhb"] = "holdout"
    folds: int = 5
    val: float = 0.15
    test: float = 0.15
    seed: int = 0


@dataclass
class SyntheticSpec:
    """Synthetic subjects added to every fold's training set (``brainage train --synthetic``).

    Attributes:
        path: A dataset of ``brainage gan synthesize`` (None = real subjects only).
        ratio: Synthetic subjects per real training subject of a fold (1 doubles the set);
            fewer when the fold has fewer eligible children (recorded in the model card).
        balance: ``age``: children are taken one at a time from the age bin with the fewest
            subjects so far (real + chosen; seeded ties), flattening the age distribution;
            ``random``: a seeded random sample. Never file order.
        seed: Seed of the choice.
    """

    path: str | None = None
    ratio: float = 1.0
    balance: Literal["age", "random"] = "age"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.ratio >= 0:
            raise InputError(f"synthetic.ratio={self.ratio!r}: expected a number >= 0 "
                             "(synthetic per real training subject). Fix: e.g. "
                             "--synthetic-ratio 1.")


@dataclass
class TrainConfig:
    """Everything that defines one training run (saved resolved as ``config.yaml``).

    Attributes:
        model: Network to build.
        loss: Objective.
        optim: Optimiser.
        scheduler: Learning-rate schedule.
        augment: Training-only augmentation.
        split: Subject splits (a user ``splits.json`` in the run folder wins).
        synthetic: Synthetic subjects mixed into the training folds (off by default).
        epochs: Maximum epochs.
        batch_size: Training batch size (evaluation never pads).
        early_stopping: Stop after this many epochs without a better val MAE (0 = off).
        precision: ``"32"`` or ``"bf16-mixed"`` (bf16 autocast).
        channels_last: Keep weights in the ``channels_last_3d`` memory format (1.15-1.55x
            faster 3D convolutions on CPU, docs/training.md; not measured on GPU).
        compile: Compile the network with ``torch.compile`` (TorchInductor fuses the norm,
            activation and sum kernels between convolutions). On 2 CPU cores a settled
            full-size ScaleDense step was 1.02-1.46x eager (docs/benchmarks.md), after about
            a minute of compilation per model; off by default. Needs a C++ compiler on CPU.
        repeats: Models trained per fold with seeds ``seed, seed + 1, ...``; their
            predictions are averaged (an ensemble; ``ensemble_sd`` in the predictions).
        ema: Decay of an exponential moving average of the weights used for validation and
            the saved model (0 = off; 0.99 averages about the last 100 steps).
        seed: Global seed (torch, numpy, python, dataloader workers).
        use_sex: Pass sex to the model (the model must be built with ``use_sex: true``).
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``).
        devices: Devices per node (``1``, ``2``, or ``auto``).
        strategy: Lightning strategy (``auto``, ``ddp``, ``ddp_spawn``).
        num_nodes: Nodes for multi-node DDP.
        num_workers: DataLoader worker processes.
        deterministic: Deterministic algorithms (forced on CPU for reproducibility).
        progress_bar: Show Lightning's progress bar.
        log_every_n_steps: Logging interval in optimiser steps.
        tensorboard: Also log to TensorBoard when it is installed.
        stage1_run: Cascade stage 2 only: path of the stage-1 run (set by the cascade).
        init_from: Fine-tuning: a finished run folder (or ``bundled``) whose weights start
            every member; the model and its kwargs are then the source's
            (:mod:`brainage.training.finetune`). Saved resolved (absolute path).
        init_member: The source member that initialises every member (default: the first
            listed in its ``run.json``, e.g. ``fold-0``).
        contrastive: Views and projection head of contrastive pretraining (``brainage
            pretrain``, with a loss on the ``projection`` output such as ``contrastive``);
            None for supervised training.
        classical: A classical model on tissue maps instead of a network (None: network).
        stack: Member runs combined on their out-of-fold predictions (None: one model).
    """

    model: ModelSpec = field(default_factory=lambda: ModelSpec("sfcn", dict(CPU_MODEL)))
    loss: LossSpec = field(default_factory=lambda: LossSpec("soft_label", {"sigma": 1.0}))
    optim: OptimSpec = field(default_factory=lambda: OptimSpec(lr=4e-3))
    scheduler: SchedulerSpec = field(default_factory=lambda: SchedulerSpec("cosine"))
    augment: AugmentSpec = field(default_factory=AugmentSpec)
    split: SplitSpec = field(default_factory=lambda: SplitSpec("kfold", val=0.0))
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)
    epochs: int = 60
    batch_size: int = 8
    early_stopping: int = 0
    precision: Literal["32", "bf16-mixed"] = "32"
    channels_last: bool = True
    compile: bool = False
    ema: float = 0.0
    repeats: int = 3
    seed: int = 0
    use_sex: bool = False
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    num_workers: int = 0
    deterministic: bool = True
    progress_bar: bool = True
    log_every_n_steps: int = 10
    tensorboard: bool = True
    stage1_run: str | None = None
    init_from: str | None = None
    init_member: str | None = None
    contrastive: ContrastiveSpec | None = None
    classical: ClassicalSpec | None = None
    stack: StackSpec | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_nodes", "repeats"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}={getattr(self, name)!r}: expected at least 1. "
                                 f"Fix: e.g. --set {name}=1.")
        if self.early_stopping < 0 or self.num_workers < 0:
            raise InputError(f"early_stopping={self.early_stopping!r}, num_workers="
                             f"{self.num_workers!r}: expected numbers >= 0 (0 = off).")


def stage2_defaults(stage1: TrainConfig) -> TrainConfig:
    """The TSAN stage-2 recipe derived from a stage-1 config.

    Same data, split, schedule, epochs and batch; model ``tsan_stage2`` with the stage-1
    trunk's arguments (when it is ScaleDense); SGD lr 1e-5, weight decay 5e-4.
    """
    kwargs = {k: v for k, v in stage1.model.kwargs.items() if k != "output_relu"}
    if stage1.model.name != "scaledense":
        kwargs = {}  # the TSAN defaults
    return dataclasses.replace(
        stage1,
        model=ModelSpec(STAGE2_MODEL, kwargs),
        optim=OptimSpec(name="sgd", lr=1e-5, weight_decay=5e-4, amsgrad=False, momentum=0.0),
        loss=dataclasses.replace(stage1.loss) if stage1.loss.name != "soft_label"
        else LossSpec("mse"),
    )


def load_train_config(path: str | Path | None = None, overrides: Sequence[str] = ()
                      ) -> TrainConfig:
    """Defaults, then the preset or YAML file `path` (after what it ``inherits:``), then
    ``key=value`` overrides.

    A layer that names ``model.name`` / ``loss.name`` defines that section's ``kwargs``
    completely; ``model.kwargs.x=...`` without a name changes one argument.

    Args:
        path: A preset name (``tsan``, ``quickstart``; ``brainage config list``) or a file.
        overrides: ``key=value`` items, e.g. ``["epochs=5", "optim.lr=1e-3"]``.

    Raises:
        BrainAgeError: unknown preset, missing or invalid file, unknown keys, wrong types,
            unknown component names.
    """
    from brainage.training.presets import resolve_config

    file = resolve_config(path) if path is not None else None
    return load_config(TrainConfig, file, overrides, resolve=resolve_config)
