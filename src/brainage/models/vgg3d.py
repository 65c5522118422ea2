"""VGG3D, the task-guided regressor of TGB-GAN (Li et al., MIUA 2021), as an age model.

Five blocks ``conv3 -> ReLU -> conv3 -> + residual -> ReLU -> MaxPool(2)`` with 16/32/64/128/256
channels; the residual is the block's input with its channels zero-padded (or cut) to the
block width, so it adds no parameters. Flatten, then Dense 2048 -> 512 -> 64, each followed
by ReLU and dropout, then Dense(64 -> 1).

The flattened size depends on the input size, so the conv map is first average-pooled to a
fixed ``feature_grid`` (3^3): at the paper's 96^3 input the map is already 3^3 and the
pooling is the identity (6,912 values, exactly the published flatten); other grids (e.g.
91 x 109 x 91) then work with the same weights. ``forward_features`` ends after the 64-wide
layer (F = 64); the head is dropout + Linear(64 -> 1). The published output layer has no
bias; this one has (one parameter, so the head can start from the mean age).

Published sizes: 18,773,265 parameters at the default settings (14.2 M in Dense(6912->2048)).
In TGB-GAN it sees the generator's reconstruction (dropout 0); trained on real (+ synthetic)
scans it is the downstream regressor (dropout 0.1, the default here).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from brainage.errors import InputError
from brainage.models.base import BrainAgeModel, check_num_outputs
from brainage.models.heads import LinearHead, LinearHeadMixin
from brainage.models.input_stage import DEFAULT_RANGE
from brainage.models.layers import check_dropout, check_positive, make_act, make_norm
from brainage.models.registry import register_model
from brainage.models.tgbgan import PAPER


def match_channels(x: Tensor, channels: int) -> Tensor:
    """``(B, C, ...)`` -> ``(B, channels, ...)``: zero-pad extra channels, or keep the first."""
    extra = channels - x.shape[1]
    if extra <= 0:
        return x[:, :channels]
    return nn.functional.pad(x, (0, 0, 0, 0, 0, 0, 0, extra))  # pads the channel axis


class VGGResBlock(nn.Module):
    """conv3 -> norm -> act -> conv3 -> norm -> (+ padded input) -> act -> MaxPool(2)."""

    def __init__(self, in_channels: int, channels: int, norm: str, act: str, residual: bool
                 ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 3, padding=1)
        self.norm1 = make_norm(norm, channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm2 = make_norm(norm, channels)
        self.act = make_act(act)
        self.pool = nn.MaxPool3d(2)
        self.channels, self.residual = channels, residual

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))  # (B, C, D, H, W)
        if self.residual:
            h = h + match_channels(x, self.channels)
        return self.pool(self.act(h))  # -> (B, C, D/2, H/2, W/2)


def _mlp(width: int, dense: Sequence[int], act: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, w in enumerate(dense):
        layers += [nn.Linear([width, *dense][i], w), make_act(act)]
        if i < len(dense) - 1:  # the last dropout is the head's
            layers.append(nn.Dropout(dropout))
    return layers


class VGG3D(LinearHeadMixin, BrainAgeModel):
    """VGG3D with residual blocks and a dense regression stack.

    Args:
        in_channels: Image channels.
        num_outputs: Outputs per subject (1 = age).
        channels: Block widths (16, 32, 64, 128, 256); each block halves the size, so inputs
            need ``2 ** len(channels)`` voxels per axis.
        dense: Widths of the dense layers after the flatten (2048, 512, 64); F = the last
            (or the flattened size when empty).
        feature_grid: Size the conv map is average-pooled to before the flatten (3, 3, 3:
            the identity at 96^3).
        norm: Norm after each conv (``none``, as published; ``batch`` is the variant).
        act: Activation (``relu``).
        dropout: Dropout after each dense layer (0.1 downstream; 0 inside the GAN).
        residual: Add the zero-padded block input (published: True).
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
        output_bias: Initial bias of the output layer (e.g. the training cohort's mean age,
            so MSE training starts near the age variance); None keeps PyTorch's default.
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1,
                 channels: Sequence[int] = (16, 32, 64, 128, 256),
                 dense: Sequence[int] = (2048, 512, 64),
                 feature_grid: Sequence[int] = (3, 3, 3), norm: str = "none", act: str = "relu",
                 dropout: float = 0.1, residual: bool = True, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE,
                 output_bias: float | None = None) -> None:
        super().__init__()
        self.output_bias = output_bias
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        widths = _ints(channels, "channels")
        hidden, grid = [int(w) for w in dense], [int(g) for g in feature_grid]
        if len(grid) != 3:
            raise InputError(f"feature_grid must be (d, h, w), got {list(feature_grid)!r}. "
                                "Fix: e.g. [3, 3, 3].")
        check_positive(in_channels=in_channels, **{f"dense[{i}]": w for i, w in enumerate(hidden)},
                       **{f"feature_grid[{i}]": g for i, g in enumerate(grid)})
        check_dropout(dropout)
        check_num_outputs(num_outputs)
        self.in_channels, self.num_outputs, self.dropout = in_channels, num_outputs, dropout
        self.blocks = nn.Sequential(*(
            VGGResBlock([first, *widths][i], c, norm, act, residual) for i, c in enumerate(widths)
        ))
        self.grid_pool = nn.AdaptiveAvgPool3d(tuple(grid))
        flat = widths[-1] * grid[0] * grid[1] * grid[2]
        self.dense = nn.Sequential(*_mlp(flat, hidden, act, dropout))
        self.num_features = hidden[-1] if hidden else flat
        self.min_input_shape = (2 ** len(widths),) * 3
        self.head = LinearHead(self.num_features, num_outputs, dropout)
        if output_bias is not None:
            self._init_head(self.head)

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> features ``(B, F)`` (output of the 64-wide layer)."""
        x = self.prepare_input(x)
        x = self.grid_pool(self.blocks(x))  # (B, 256, D/32, H/32, W/32) -> (B, 256, 3, 3, 3)
        return self.dense(x.flatten(1))  # (B, 6912) -> (B, 64)

    def _init_head(self, head: nn.Module) -> None:
        head.fc.reset_parameters()  # type: ignore[union-attr, operator]
        if self.output_bias is not None:
            nn.init.constant_(head.fc.bias, float(self.output_bias))  # type: ignore[union-attr]


def _ints(values: Sequence[int], name: str) -> list[int]:
    widths = [int(v) for v in values]
    if not widths:
        raise InputError(f"{name} must list at least one block width, got {list(values)!r}.")
    check_positive(**{f"{name}[{i}]": w for i, w in enumerate(widths)})
    return widths


@register_model(VGG3D, paper=PAPER,
                tiny={"channels": [2, 4, 4], "dense": [8, 4], "feature_grid": [2, 2, 2]})
def vgg3d(**kwargs: object) -> VGG3D:
    """VGG3D (Li et al. 2021, TGB-GAN's task branch): 5 residual conv blocks + dense 2048-512-64."""
    return VGG3D(**kwargs)  # type: ignore[arg-type]
