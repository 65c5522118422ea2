"""The network's sections of a :class:`~brainage.training.config.TrainConfig`: model, loss,
optimiser, schedule, augmentation and the contrastive views and head (the GAN config
(:mod:`brainage.training.gan_config`) takes its model, optimiser and schedule from here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from brainage.errors import InputError


@dataclass
class ModelSpec:
    """Which registered network to build.

    Attributes:
        name: Registered model name (``brainage models`` lists them).
        kwargs: Constructor arguments, e.g. ``{width: 4, num_blocks: 3}``.
    """

    name: str = "sfcn"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossSpec:
    """Training objective.

    Attributes:
        name: A name of :data:`brainage.losses.LOSSES`: ``mse``, ``l1``, ``tsan`` (MSE +
            λ·(Spearman + β·age-difference)) or ``soft_label`` (KL to Gaussian soft labels
            over the model's age bins).
        kwargs: Arguments of the loss (e.g. ``{lam: 10, beta: 1}`` for ``tsan``).
    """

    name: str = "soft_label"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from brainage.losses.registry import LOSSES

        LOSSES.get(self.name)


@dataclass
class OptimSpec:
    """Optimiser.

    Attributes:
        name: A name of :data:`brainage.training.optim.OPTIMIZERS`: ``adam``, ``adamw``
            or ``sgd``.
        lr: Learning rate.
        weight_decay: L2 weight decay (decoupled for ``adamw``).
        amsgrad: AMSGrad variant of Adam (TSAN stage 1 uses it).
        momentum: SGD momentum.
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 5e-4
    amsgrad: bool = False
    momentum: float = 0.0

    def __post_init__(self) -> None:
        from brainage.training.optim import OPTIMIZERS

        OPTIMIZERS.get(self.name)
        if self.lr <= 0:
            raise InputError(f"optim.lr={self.lr!r}: expected a positive number. "
                             "Fix: e.g. optim.lr=0.001.")


@dataclass
class SchedulerSpec:
    """Learning-rate schedule.

    Attributes:
        name: A name of :data:`brainage.training.optim.SCHEDULERS`: ``plateau``
            (ReduceLROnPlateau on val MAE), ``step`` (× gamma every
            step_size epochs), ``cosine`` (cosine decay to 0 over ``epochs``; suits short
            fixed-length CPU runs, where a small validation set makes plateaus noisy) or
            ``none``.
        factor: Plateau reduction factor.
        patience: Plateau patience in epochs.
        step_size: Epochs between ``step`` reductions.
        gamma: ``step`` reduction factor.
    """

    name: str = "plateau"
    factor: float = 0.5
    patience: int = 5
    step_size: int = 10
    gamma: float = 0.9

    def __post_init__(self) -> None:
        from brainage.training.optim import SCHEDULERS

        SCHEDULERS.get(self.name)


@dataclass
class AugmentSpec:
    """Training-only augmentation (TSAN used none; off by default).

    Attributes:
        enabled: Apply the transforms below to training images.
        degrees: Largest random rotation (degrees) of a small random affine.
        scale: Largest relative scaling of the random affine (0.05 = ±5 %).
        translation: Largest shift in voxels.
        flip: Random left-right flips (off: brains are not symmetric).
        kind: ``affine`` (torchio, interpolated) or ``shift`` (whole voxels, ~10x cheaper).
    """

    enabled: bool = False
    degrees: float = 3.0
    scale: float = 0.03
    translation: float = 2.0
    flip: bool = False
    kind: Literal["affine", "shift"] = "affine"


@dataclass
class ContrastiveSpec:
    """Contrastive pretraining (``brainage pretrain``; Barbano et al., ISBI 2023).

    Attributes:
        views: Views of each subject per step (the paper: 2).
        augment: Augmentation of each view (:mod:`brainage.data.views`): ``none`` (identical
            views, as the published runs; the encoder then runs once per subject), a name
            or names joined by ``+`` (``crop+cutout``), or a mapping of kinds to settings.
        projection: Widths of the projection head on the encoder's features, hidden
            layers then the output (the paper: 512, 128). The L2-normalised output is the
            representation the contrastive loss sees and ``brainage probe`` probes.
    """

    views: int = 2
    augment: Any = "none"
    projection: list[int] = field(default_factory=lambda: [512, 128])

    def __post_init__(self) -> None:
        from brainage.data.views import parse_spec

        parse_spec(self.augment)
        if self.views < 1 or not self.projection or min(self.projection) < 1:
            raise InputError(f"contrastive.views={self.views!r}, contrastive.projection="
                             f"{self.projection!r}: expected at least one view and positive "
                             "widths. Fix: e.g. views: 2, projection: [512, 128].")
