"""The interface every brainage network implements (timm style).

``forward_features(x) -> (B, F)``, ``forward_head(features, **cov) -> (B,)``,
``forward(x, sex=None) -> (B,)`` predicted age, ``reset_head(num_outputs)``, ``num_features``.
Cascades, contrastive pretraining and linear probes rely only on this interface.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from brainage.errors import InputError
from brainage.models.input_stage import DEFAULT_RANGE, InputStage

if TYPE_CHECKING:
    from brainage.losses.soft_label import AgeBins


class BrainAgeModel(nn.Module):
    """Base class: a 3D encoder (``forward_features``) plus a small head (``forward_head``).

    Subclasses set ``num_features``, ``num_outputs``, ``min_input_shape`` and, when they
    take covariates, ``covariates`` (names the forward pass requires, e.g. ``("sex",)``).
    ``config`` (name + resolved kwargs) is filled in by :func:`create_model`.

    Attributes:
        num_features: Width F of the feature vector from ``forward_features``.
        num_outputs: Outputs per subject; 1 gives ``(B,)`` predictions, K > 1 gives ``(B, K)``.
        in_channels: Image channels expected.
        min_input_shape: Smallest spatial ``(D, H, W)`` the network accepts (after input
            pooling).
        input_pool: Average-pool the image by this factor before the network (1 = off). A
            pooled model is trained and used on the same prepared grid, so ``predict`` and
            ``explain`` need nothing extra, while the network runs at the coarser resolution
            (2 on the 2 mm grid = 4 mm, 8x fewer voxels; 3 = 6 mm, the CPU preset).
        input_stage: The parameter-free first step (intensity bins, pooling), see
            :mod:`brainage.models.input_stage`.
        covariates: Keyword inputs the forward pass requires besides the image.
        age_bins: The age bins of a distribution head (SFCN's soft labels), whose
            ``forward_outputs`` then also give ``log_probs``; None for a point estimate.
        bin_layer: With ``age_bins``: the ``nn.Linear`` giving one logit per bin, whose rows
            fine-tuning extends when a cohort's ages leave the bins (its ``age_range``
            constructor argument then widens); None when the bins cannot be extended.
        config: ``{"name": ..., "kwargs": {...}}`` to rebuild this model.
    """

    num_features: int
    num_outputs: int = 1
    in_channels: int = 1
    min_input_shape: tuple[int, int, int] = (1, 1, 1)
    covariates: tuple[str, ...] = ()
    input_pool: int = 1
    age_bins: AgeBins | None = None
    bin_layer: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {}

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> features ``(B, F)``."""
        raise NotImplementedError

    def forward_head(self, features: Tensor, **cov: Tensor) -> Tensor:
        """Features ``(B, F)`` (+ covariates) -> prediction ``(B,)`` (or ``(B, K)``)."""
        raise NotImplementedError

    def reset_head(self, num_outputs: int = 1) -> None:
        """Replace the head by a freshly initialised one with ``num_outputs`` outputs."""
        raise NotImplementedError

    def forward(self, x: Tensor, sex: Tensor | None = None) -> Tensor:
        """Image ``(B, C, D, H, W)`` (+ sex codes ``(B,)``) -> predicted age ``(B,)``."""
        cov = self.collect_covariates(sex=sex)
        return self.forward_head(self.forward_features(x), **cov)

    def forward_outputs(self, x: Tensor, **cov: Tensor) -> dict[str, Tensor]:
        """Everything the head gives for a batch, for the training objective.

        Returns:
            ``{"age": (B,)}``; a model with ``age_bins`` adds ``"log_probs"`` ``(B, K)``.
        """
        return {"age": self(x, **cov)}

    def collect_covariates(self, **given: Tensor | None) -> dict[str, Tensor]:
        """Check the covariates passed against ``self.covariates`` and return the given ones.

        Raises:
            BrainAgeError: a required covariate is missing, or one the model does not use
                was passed (silently ignoring sex would hide a configuration mistake).
        """
        passed = {k: v for k, v in given.items() if v is not None}
        missing = [k for k in self.covariates if k not in passed]
        extra = [k for k in passed if k not in self.covariates]
        name = self.config.get("name", type(self).__name__)
        if missing:
            raise InputError(
                f"model {name!r} needs {', '.join(missing)}. Fix: pass it, or build the model "
                "without it (e.g. use_sex=False)."
            )
        if extra:
            raise InputError(
                f"model {name!r} does not use {', '.join(extra)}. Fix: do not pass it, or build "
                "a model that takes it (e.g. use_sex=True)."
            )
        return passed

    def set_input(self, in_channels: int, input_pool: int = 1, input_bins: int = 0,
                  input_range: Sequence[float] = DEFAULT_RANGE) -> int:
        """Validate and build the parameter-free input stage (constructor of every model).

        Args:
            in_channels: Image channels.
            input_pool: Average-pooling factor (1 = off).
            input_bins: Intensity bins before pooling (0 = off), see
                :class:`~brainage.models.input_stage.InputStage`.
            input_range: First and last bin centre.

        Returns:
            Channels of the network's first layer (``in_channels * input_bins`` with bins).
        """
        self.input_stage = InputStage(in_channels, input_pool, input_bins, input_range)
        self.input_pool = self.input_stage.pool
        self.in_channels = int(in_channels)
        return self.input_stage.out_channels

    @contextmanager
    def staged_inputs(self) -> Iterator[None]:
        """Within this block the model takes inputs that already went through
        ``input_stage`` (training caches them once per scan; see ``ScanDataset``)."""
        previous, self._staged = getattr(self, "_staged", False), True
        try:
            yield
        finally:
            self._staged = previous

    def prepare_input(self, x: Tensor) -> Tensor:
        """Check that ``x`` is ``(B, in_channels, D, H, W)`` and big enough; apply the input
        stage (pooling, intensity bins) unless the inputs are already staged.

        Raises:
            ValueError: wrong number of axes or channels (a programming error).
            InputError: a volume too small for the model.
        """
        staged = getattr(self, "_staged", False)
        channels = self.input_stage.out_channels if staged else self.in_channels
        if x.ndim != 5 or x.shape[1] != channels:
            raise ValueError(
                f"input must have shape (B, {channels}, D, H, W), got {tuple(x.shape)}."
                " Fix: add the batch and channel axes (x[None, None])."
            )
        p = 1 if staged else self.input_pool
        small = any(s // p < m for s, m in zip(x.shape[2:], self.min_input_shape, strict=True))
        if small:
            need = tuple(m * p for m in self.min_input_shape)
            raise InputError(
                f"input of spatial size {tuple(x.shape[2:])} is too small for this model; it "
                f"needs at least {need}. Fix: use larger volumes, fewer blocks or less "
                "input_pool."
            )
        return x if staged else self.input_stage(x)

    def squeeze_output(self, out: Tensor) -> Tensor:
        """``(B, 1) -> (B,)`` when there is a single output; ``(B, K)`` is kept."""
        return out.squeeze(1) if self.num_outputs == 1 else out


def check_num_outputs(num_outputs: int) -> None:
    """Raise unless ``num_outputs`` is a positive integer."""
    if int(num_outputs) != num_outputs or num_outputs < 1:
        raise InputError(f"num_outputs must be a positive integer, got {num_outputs!r}.")


def batch_covariates(model: BrainAgeModel, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The covariates `model` takes (sex, stage-1 age), picked from a data batch.

    Raises:
        InputError: the batch lacks one of them.
    """
    cov: dict[str, Tensor] = {}
    for name in model.covariates:
        if name not in batch:
            raise InputError(
                f"model {model.config.get('name', type(model).__name__)!r} needs {name!r}, "
                "which the data do not provide. Fix: a stage-2 model needs the cascade "
                "(`brainage train --cascade`); a model with sex needs sex in the cohort."
            )
        cov[name] = batch[name]
    return cov


def forward_batch(model: BrainAgeModel, batch: Mapping[str, Tensor]) -> Tensor:
    """Predicted age ``(B,)`` of a data batch, passing exactly the covariates the model takes."""
    return model(batch["image"], **batch_covariates(model, batch))
