"""TSAN: ScaleDense (stage 1) and the residual second stage (Liu et al., MICCAI 2020 / TMI 2021).

Stage 1 predicts age from the image (and optionally sex). Stage 2 has its own ScaleDense
trunk and predicts a residual on top of the frozen stage-1 prediction *discretized* to the
nearest multiple of 5 years; final age = discretized + residual.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from brainage.ages import discretize_age
from brainage.errors import InputError
from brainage.models.base import BrainAgeModel, check_num_outputs
from brainage.models.heads import ResidualAgeHead, TSANHead
from brainage.models.input_stage import DEFAULT_RANGE
from brainage.models.layers import check_dropout, check_positive, init_tsan, sex_one_hot
from brainage.models.registry import register_model
from brainage.models.scaledense import ScaleDenseTrunk

PAPER = ("Liu et al., Brain age estimation from MRI using a two-stage cascade network with "
         "ranking loss, MICCAI 2020; IEEE TMI 2021")


class _TSANBase(BrainAgeModel):
    """Shared constructor checks and trunk for both stages."""

    def _build_trunk(self, in_channels: int, width: int, num_blocks: int, norm: str, act: str,
                     dropout: float, num_outputs: int, use_sex: bool, input_pool: int = 1,
                     input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE
                     ) -> None:
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        check_positive(in_channels=in_channels, width=width, num_blocks=num_blocks)
        check_dropout(dropout)
        check_num_outputs(num_outputs)
        self.in_channels = in_channels
        self.num_outputs = num_outputs
        self.use_sex = bool(use_sex)
        self.act, self.dropout = act, dropout
        self.trunk = ScaleDenseTrunk(first, width, num_blocks, norm, act)
        self.num_features = self.trunk.num_features
        self.min_input_shape = (self.trunk.min_size,) * 3

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> pooled trunk features ``(B, F)``."""
        x = self.prepare_input(x)
        return self.trunk(x)

    def _sex(self, sex: Tensor | None, batch: int) -> Tensor | None:
        return sex_one_hot(sex, batch) if self.use_sex and sex is not None else None


class ScaleDense(_TSANBase):
    """TSAN stage 1: ScaleDense trunk + TSAN head (102.4 M parameters at the defaults).

    Args:
        in_channels: Image channels.
        num_outputs: Outputs per subject (1 = age).
        width: Stem channels (8); the feature width is ``width * 3**num_blocks`` (1944).
        num_blocks: ScaleDense blocks (5); inputs need ``10 + 2**num_blocks`` voxels per axis.
        use_sex: Add the sex branch (TSAN's covariate, one-hot 0 = female, 1 = male).
        norm: Norm after each convolution (``batch``).
        act: Activation (``elu``).
        dropout: Dropout before the head (0, as published).
        output_relu: Final ReLU on the output, as published.
        output_bias: Initial bias of the last layer; None keeps the published init. With the
            final ReLU, roughly 4 in 10 published inits output 0 for every input (no gradient
            ever flows); setting it to the training set's mean age avoids that.
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, width: int = 8,
                 num_blocks: int = 5, use_sex: bool = False, norm: str = "batch",
                 act: str = "elu", dropout: float = 0.0, output_relu: bool = True,
                 output_bias: float | None = None, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        self._build_trunk(in_channels, width, num_blocks, norm, act, dropout, num_outputs,
                          use_sex, input_pool, input_bins, input_range)
        self.output_relu, self.output_bias = output_relu, output_bias
        self.covariates = ("sex",) if self.use_sex else ()
        init_tsan(self.trunk)
        self.head = self._new_head(num_outputs)

    def _new_head(self, num_outputs: int) -> TSANHead:
        head = TSANHead(self.num_features, num_outputs, self.use_sex, self.act, self.dropout,
                        self.output_relu)
        init_tsan(head)
        if self.output_bias is not None:
            nn.init.constant_(head.out[-1].bias, float(self.output_bias))
        return head

    def forward_head(self, features: Tensor, sex: Tensor | None = None, **cov: Tensor) -> Tensor:
        """Features ``(B, F)`` (+ sex) -> age ``(B,)``."""
        self.collect_covariates(sex=sex, **cov)
        out = self.head(features, self._sex(sex, features.shape[0]))  # (B, F) -> (B, K)
        return self.squeeze_output(out)

    def reset_head(self, num_outputs: int = 1) -> None:
        """Fresh TSAN head with ``num_outputs`` outputs (TSAN init)."""
        check_num_outputs(num_outputs)
        self.num_outputs = num_outputs
        self.head = self._new_head(num_outputs).to(next(self.trunk.parameters()).device)


class TSANStage2(_TSANBase):
    """TSAN stage 2: own ScaleDense trunk + residual head on the discretized stage-1 age.

    Args:
        in_channels, num_outputs, width, num_blocks, use_sex, norm, act, dropout: As ScaleDense.
        step: Discretization step in years (5).
        normalise_age: Feed ``(disc - age_mean) / age_sd`` to the age branch instead of the raw
            discretized age. The raw input (~60) dominates the affine head and collapses
            predictions to one value per 5-year bin; False reproduces the published model.
        age_mean: Centre for ``normalise_age`` (years).
        age_sd: Scale for ``normalise_age`` (years).
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, width: int = 8,
                 num_blocks: int = 5, use_sex: bool = False, norm: str = "batch",
                 act: str = "elu", dropout: float = 0.0, step: float = 5.0,
                 normalise_age: bool = False, age_mean: float = 50.0,
                 age_sd: float = 20.0, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        self._build_trunk(in_channels, width, num_blocks, norm, act, dropout, num_outputs,
                          use_sex, input_pool, input_bins, input_range)
        check_positive(step=step, age_sd=age_sd)
        self.step, self.normalise_age = float(step), bool(normalise_age)
        self.age_mean, self.age_sd = float(age_mean), float(age_sd)
        self.covariates = ("stage1_age", "sex") if self.use_sex else ("stage1_age",)
        self.head = ResidualAgeHead(self.num_features, num_outputs, self.use_sex, act, dropout)
        init_tsan(self)

    def forward(self, x: Tensor, stage1_age: Tensor | None = None,  # type: ignore[override]
                sex: Tensor | None = None) -> Tensor:
        """Image + stage-1 age ``(B,)`` (+ sex) -> final age ``(B,)`` = discretized + residual."""
        return self.forward_head(self.forward_features(x), stage1_age=stage1_age, sex=sex)

    def forward_residual(self, x: Tensor, stage1_age: Tensor, sex: Tensor | None = None
                         ) -> Tensor:
        """Image + stage-1 age (+ sex) -> residual ``(B,)`` (target: age - discretized)."""
        return self.head_residual(self.forward_features(x), stage1_age=stage1_age, sex=sex)

    def discretized(self, stage1_age: Tensor) -> Tensor:
        """Stage-1 age ``(B,)`` or ``(B, 1)`` -> discretized age ``(B, 1)``, detached."""
        age = stage1_age.detach().reshape(-1, 1)  # -> (B, 1)
        return discretize_age(age, self.step)

    def residual_target(self, age: Tensor, stage1_age: Tensor) -> Tensor:
        """Target of ``forward_residual``: true age ``(B,)`` minus the discretized age."""
        return age - self.discretized(stage1_age).squeeze(1)

    def head_residual(self, features: Tensor, stage1_age: Tensor | None = None,
                      sex: Tensor | None = None) -> Tensor:
        """Features ``(B, F)`` + stage-1 age -> residual ``(B,)`` (or ``(B, K)``)."""
        self.collect_covariates(stage1_age=stage1_age, sex=sex)
        batch = features.shape[0]
        disc = self.discretized(stage1_age)  # (B,) -> (B, 1)
        if disc.shape[0] != batch:
            raise InputError(f"stage1_age has {disc.shape[0]} values for a batch of {batch}.")
        age_in = (disc - self.age_mean) / self.age_sd if self.normalise_age else disc
        out = self.head(features, age_in.to(features.dtype), self._sex(sex, batch))
        return self.squeeze_output(out)

    def forward_head(self, features: Tensor, stage1_age: Tensor | None = None,
                     sex: Tensor | None = None, **cov: Tensor) -> Tensor:
        """Features ``(B, F)`` + stage-1 age (+ sex) -> final age ``(B,)``."""
        residual = self.head_residual(features, stage1_age=stage1_age, sex=sex)
        disc = self.discretized(stage1_age)  # (B, 1)
        return residual + (disc.squeeze(1) if self.num_outputs == 1 else disc)

    def reset_head(self, num_outputs: int = 1) -> None:
        """Fresh residual head with ``num_outputs`` outputs (TSAN init)."""
        check_num_outputs(num_outputs)
        self.num_outputs = num_outputs
        self.head = ResidualAgeHead(self.num_features, num_outputs, self.use_sex, self.act,
                                    self.dropout).to(next(self.trunk.parameters()).device)
        init_tsan(self.head)


@register_model(ScaleDense, tiny={"width": 2, "num_blocks": 2, "output_bias": 50.0},
                paper=PAPER)
def scaledense(**kwargs: object) -> ScaleDense:
    """TSAN stage 1 (ScaleDense): 5 dense blocks with asymmetric convs + SE, optional sex."""
    return ScaleDense(**kwargs)  # type: ignore[arg-type]


@register_model(TSANStage2, tiny={"width": 2, "num_blocks": 2}, paper=PAPER)
def tsan_stage2(**kwargs: object) -> TSANStage2:
    """TSAN stage 2: second ScaleDense predicting a residual on the discretized stage-1 age."""
    return TSANStage2(**kwargs)  # type: ignore[arg-type]
