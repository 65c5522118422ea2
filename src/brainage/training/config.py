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
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from brainage.config import load_config
from brainage.errors import InputError

#: Model name of the TSAN second stage (the cascade's default stage 2).
STAGE2_MODEL = "tsan_stage2"
#: SFCN of the CPU preset: widths (the paper's are 32, 64, 128, 256, 256, 64) on 6 mm maps of
#: 8 intensity bins (soft tissue fractions; docs/training.md).
CPU_MODEL = {"channels": [16, 32, 64, 64], "input_pool": 3, "input_bins": 8,
             "age_range": [10, 90], "dropout": 0.2}


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
class ClassicalSpec:
    """A classical model (:mod:`brainage.classical`) instead of a network.

    With this section the network sections (model, loss, optim, ...) are not used.

    Attributes:
        estimator: ``ridge`` (penalty by generalised cross-validation), ``svr`` (linear
            support-vector regression, C by inner 5-fold search), ``krr`` (kernel ridge,
            RBF, seeded inner 5-fold grid search) or ``gpr`` (Gaussian process, linear
            kernel + noise, marginal likelihood).
        maps: Tissue maps used as features (``GM``, ``WM``, ``CSF``, ``logjac``).
        modulate: Jacobian-modulated maps (tissue volume per template voxel).
        fwhm_mm: Smoothing of the voxel maps (mm FWHM).
        pool: Block-average factor on the grid.
        volumes: Add whole-brain GM, WM, CSF and intracranial volumes.
        voxels: Use the smoothed voxel maps (off: regional features only).
        parcels: Template-parcel scales (parcels per hemisphere) whose map means are added.
        brain_measures: Add the ventricular CSF and whole-brain tissue fractions.
        select: Candidates to choose from *inside each training fold*: each entry changes
            some of the settings above (and may have a ``name``). Every fold compares them
            by inner cross-validation on its own training subjects and fits the winner, so
            the run's out-of-fold predictions score the choice honestly (nested
            cross-validation). Empty: these settings, no choice.
        select_folds: Inner folds of that choice.
    """

    estimator: str = "ridge"
    maps: list[str] = field(default_factory=lambda: ["GM"])
    modulate: bool = True
    fwhm_mm: float = 8.0
    pool: int = 2
    volumes: bool = True
    voxels: bool = True
    parcels: list[int] = field(default_factory=list)
    brain_measures: bool = False
    select: list[dict[str, Any]] = field(default_factory=list)
    select_folds: int = 5

    def __post_init__(self) -> None:
        from brainage.classical.estimators import ESTIMATORS

        ESTIMATORS.get(self.estimator)
        self.feature_spec()
        if self.select_folds < 2:
            raise InputError(f"classical.select_folds={self.select_folds!r}: expected 2 or "
                             "more inner folds. Fix: e.g. select_folds: 5.")
        self.candidates()  # every candidate is checked at load time

    def feature_spec(self) -> Any:
        """The :class:`~brainage.classical.FeatureSpec` of these settings."""
        from brainage.classical.features import FeatureSpec

        return FeatureSpec(tuple(self.maps), self.modulate, self.fwhm_mm, self.pool,
                           self.volumes, self.voxels, tuple(self.parcels),
                           self.brain_measures)

    def candidates(self) -> dict[str, ClassicalSpec]:
        """Name -> settings of each candidate (just these settings when ``select`` is
        empty, named ``default``)."""
        from brainage.config import from_dict, to_dict

        if not self.select:
            return {"default": self}
        base = {k: v for k, v in to_dict(self).items() if k not in ("select", "select_folds")}
        out: dict[str, ClassicalSpec] = {}
        for i, entry in enumerate(self.select):
            where = f"classical.select[{i}]"
            if not isinstance(entry, dict):
                raise InputError(f"{where}: got {entry!r}; expected a mapping of settings. "
                                 "Fix: e.g. - {estimator: svr, parcels: [32]}.")
            changes = {k: v for k, v in entry.items() if k != "name"}
            if "select" in changes or "select_folds" in changes:
                raise InputError(f"{where}: a candidate cannot hold its own select. Fix: "
                                 "list every candidate at the top level.")
            name = str(entry.get("name") or f"candidate-{i}")
            if name in out:
                raise InputError(f"{where}: the name {name!r} is used twice. Fix: give "
                                 "each candidate its own name.")
            out[name] = from_dict(ClassicalSpec, {**base, **changes}, where)
        return out


@dataclass
class StackSpec:
    """A stack: several member runs combined by a model fitted on their out-of-fold
    predictions (:mod:`brainage.training.stack`).

    Attributes:
        members: Presets or config files of the members (each trained on the same splits).
        combiner: ``convex`` (non-negative weights summing to 1, the Super Learner's),
            ``positive`` (non-negative weights + an intercept) or ``mean`` (equal weights);
            see :func:`brainage.estimators.stacking.fit_combiner`.
    """

    members: list[str] = field(default_factory=list)
    combiner: Literal["convex", "positive", "mean"] = "convex"

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise InputError(f"stack.members={self.members!r}: a stack needs at least two "
                             "members. Fix: e.g. members: [quickstart, gm_gpr].")


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
