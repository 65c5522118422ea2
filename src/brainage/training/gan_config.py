"""Typed TGB-GAN training configuration (Li et al., MIUA 2021), overridden by YAML and flags.

The defaults are the published recipe (the ``tgbgan`` preset spells them out): the 18 M
autoencoder generator, the 4.7 M patch critic and the VGG3D task branch on 96^3 inputs;
generator + task branch ``-D(G(x)) + 10 L1 + 0.1 MSE(R(G(x)), age)``; WGAN-GP critic with
lambda = 10, one critic step per generator step; Adam 1e-4 for both, lr x 0.8 every 10
epochs, 100 epochs, effective batch 20 (4 x 5 accumulated).

Which subjects a GAN may see is part of the config: ``split.method: all`` trains one GAN on
every subject with an age; ``kfold`` trains one per fold on that fold's training subjects
only, so synthetic children made by fold k's GAN never carry fold k's test subjects
(:mod:`brainage.training.synthetic` enforces this when they are mixed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from brainage.config import load_config
from brainage.errors import InputError
from brainage.training.network_config import ModelSpec, OptimSpec, SchedulerSpec


def _check_weights(**weights: float) -> None:
    for name, value in weights.items():
        if not value >= 0:
            raise InputError(f"objective.{name}={value!r}: expected a weight >= 0 (0 switches "
                             f"the term off). Fix: e.g. --set objective.{name}=0.")


@dataclass
class GanObjective:
    """Loss weights (:mod:`brainage.losses.adversarial`).

    Attributes:
        alpha: Weight of the L1 reconstruction term (10).
        beta: Weight of the task branch ``MSE(R(G(x)), age)`` (0.1; 0 is the paper's "GAN
            without task branch" ablation: R is neither run nor trained).
        adversarial: Weight of ``-mean D(G(x))`` (1). 0 trains a plain autoencoder: no critic
            step is taken at all (a reference for reconstruction quality).
        gp_weight: lambda of the critic's gradient penalty (10).
        penalty: ``mean`` (gradient of the per-volume score) or ``sum`` (of the patch-map sum,
            as the published code did).
    """

    alpha: float = 10.0
    beta: float = 0.1
    adversarial: float = 1.0
    gp_weight: float = 10.0
    penalty: Literal["mean", "sum"] = "mean"

    def __post_init__(self) -> None:
        _check_weights(alpha=self.alpha, beta=self.beta, adversarial=self.adversarial,
                       gp_weight=self.gp_weight)


@dataclass
class GanSplitSpec:
    """Which subjects each GAN of the run trains on (a ``--splits`` file wins).

    Attributes:
        method: ``all`` (one GAN on every subject with an age) or ``kfold`` (one GAN per
            fold, on the fold's training subjects; the splits are those ``brainage train
            --folds K`` makes with the same seed and no validation split).
        folds: Folds for ``kfold``.
        seed: Seed of the k-fold split.
        holdout: Fraction of each GAN's subjects held out of its gradient steps to choose the
            best epoch by (their reconstruction L1); they still count as seen by the GAN.
    """

    method: Literal["all", "kfold"] = "all"
    folds: int = 5
    seed: int = 0
    holdout: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 <= self.holdout < 1.0 or self.folds < 2:
            raise InputError(f"split.holdout={self.holdout!r}, split.folds={self.folds!r}: "
                             "expected a fraction in [0, 1) and at least 2 folds. Fix: e.g. "
                             "--set split.holdout=0.1.")


@dataclass
class GanConfig:
    """Everything that defines one GAN training run (saved resolved as ``config.yaml``).

    Attributes:
        generator: Registered ``generator`` network (``tgbgan_generator``).
        critic: Registered ``critic`` network (``tgbgan_critic``).
        regressor: Registered age network of the task branch (``vgg3d``, dropout 0).
        objective: Loss weights.
        optim: Optimiser of the generator and the task branch (Adam 1e-4).
        critic_optim: Optimiser of the critic (Adam 1e-4).
        scheduler: Schedule of both (``step``: x 0.8 every 10 epochs).
        split: Which subjects each GAN sees, and the held-out share for the best epoch.
        epochs: Epochs.
        batch_size: Volumes per forward pass.
        accumulate: Batches whose gradients are summed before each optimiser step
            (effective batch = batch_size x accumulate).
        samples: Held-out volumes in the real-vs-reconstruction PNG written every epoch
            (0 = none).
        seed: Global seed (weights, data order, penalty interpolates).
        precision: ``"32"`` or ``"bf16-mixed"``.
        accelerator: Lightning accelerator (``cpu``, ``gpu``, ``auto``); one device.
        num_workers: DataLoader worker processes.
        deterministic: Deterministic algorithms (forced on CPU).
        progress_bar, log_every_n_steps, tensorboard: Display and logging.
    """

    generator: ModelSpec = field(default_factory=lambda: ModelSpec("tgbgan_generator", {}))
    critic: ModelSpec = field(default_factory=lambda: ModelSpec("tgbgan_critic", {}))
    regressor: ModelSpec = field(default_factory=lambda: ModelSpec("vgg3d", {"dropout": 0.0}))
    objective: GanObjective = field(default_factory=GanObjective)
    optim: OptimSpec = field(default_factory=lambda: OptimSpec(lr=1e-4, weight_decay=0.0))
    critic_optim: OptimSpec = field(default_factory=lambda: OptimSpec(lr=1e-4, weight_decay=0.0))
    scheduler: SchedulerSpec = field(
        default_factory=lambda: SchedulerSpec("step", step_size=10, gamma=0.8))
    split: GanSplitSpec = field(default_factory=GanSplitSpec)
    epochs: int = 100
    batch_size: int = 4
    accumulate: int = 5
    samples: int = 4
    seed: int = 0
    precision: Literal["32", "bf16-mixed"] = "32"
    accelerator: str = "auto"
    num_workers: int = 0
    deterministic: bool = True
    progress_bar: bool = True
    log_every_n_steps: int = 10
    tensorboard: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "accumulate"):
            if getattr(self, name) < 1:
                raise InputError(f"{name}={getattr(self, name)!r}: expected at least 1. "
                                 f"Fix: e.g. --set {name}=1.")
        if self.samples < 0 or self.num_workers < 0:
            raise InputError(f"samples={self.samples!r}, num_workers={self.num_workers!r}: "
                             "expected numbers >= 0.")
        if self.scheduler.name == "plateau":
            raise InputError("scheduler.name=plateau: a GAN's losses do not decrease "
                             "steadily, so there is no metric to wait on. Fix: use step, "
                             "cosine or none.")

    @property
    def uses_critic(self) -> bool:
        """Whether the critic is trained (False for a plain autoencoder)."""
        return self.objective.adversarial > 0

    @property
    def uses_task(self) -> bool:
        """Whether the task branch R is run and trained (beta > 0)."""
        return self.objective.beta > 0


def load_gan_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> GanConfig:
    """Defaults, then the GAN preset or YAML file `path` (after what it ``inherits:``), then
    ``key=value`` overrides.

    Args:
        path: A GAN preset name (``tgbgan``, ``tgbgan_cpu``; ``brainage config list``) or a
            file.
        overrides: ``key=value`` items, e.g. ``["epochs=5", "objective.beta=0"]``.

    Raises:
        BrainAgeError: unknown preset, invalid file, unknown keys, wrong types.
    """
    from brainage.training.presets import resolve_gan_config

    file = resolve_gan_config(path) if path is not None else None
    return load_config(GanConfig, file, overrides, resolve=resolve_gan_config)
