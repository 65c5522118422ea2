"""ScaleDense trunk of TSAN (Liu et al., MICCAI 2020; IEEE TMI 2021).

Stem Conv3d(1->8, k7, p1, d2) + ELU shrinks every axis by 10 (91x109x91 -> 81x99x81). Each
of the five blocks maps C -> 3C channels and halves the size:
``concat(MaxPool(x), MaxPool(SE(ELU(BN(AC(ELU(BN(AC(x)))))))))``, so channels go
8 -> 24 -> 72 -> 216 -> 648 -> 1944 and the size 81x99x81 -> 40x49x40 -> ... -> 2x3x2.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brainage.models.layers import make_act, make_norm

#: Kernels of the four asymmetric-convolution branches, with the padding keeping the size.
AC_KERNELS = (((3, 3, 3), (1, 1, 1)), ((1, 1, 3), (0, 0, 1)), ((3, 1, 1), (1, 0, 0)),
              ((1, 3, 1), (0, 1, 0)))

#: The stem (kernel 7, padding 1, dilation 2) removes this many voxels along every axis.
STEM_SHRINK = 10


class ACConv(nn.Module):
    """Asymmetric convolution: sum of four bias-free Conv3d branches, each followed by a norm.

    Branch kernels 3x3x3, 1x1x3, 3x1x1, 1x3x1, padded to keep the spatial size.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv3d(in_channels, out_channels, k, padding=p, bias=False),
                make_norm(norm, out_channels),
            )
            for k, p in AC_KERNELS
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.branches[0](x)  # (B, Cin, D, H, W) -> (B, Cout, D, H, W)
        for branch in self.branches[1:]:
            out = out + branch(x)
        return out


class SqueezeExcite(nn.Module):
    """Channel attention: GAP -> Linear(C->C/r) -> ReLU -> Linear(C/r->C) -> sigmoid -> rescale."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        w = self.fc(x.mean(dim=(2, 3, 4)))  # (B, C, D, H, W) -> (B, C)
        return x * w[:, :, None, None, None]


class ScaleDenseBlock(nn.Module):
    """One ScaleDense block: C channels in, 3C out, spatial size halved."""

    def __init__(self, channels: int, norm: str = "batch", act: str = "elu",
                 se_reduction: int = 16) -> None:
        super().__init__()
        c2 = 2 * channels
        self.new = nn.Sequential(
            ACConv(channels, c2, norm), make_norm(norm, c2), make_act(act),
            ACConv(c2, c2, norm), make_norm(norm, c2), make_act(act),
            SqueezeExcite(c2, se_reduction), nn.MaxPool3d(2),
        )
        self.pool = nn.MaxPool3d(2)

    def forward(self, x: Tensor) -> Tensor:
        # (B, C, D, H, W) -> (B, 3C, D/2, H/2, W/2)
        return torch.cat([self.pool(x), self.new(x)], dim=1)


class ScaleDenseTrunk(nn.Module):
    """Stem + blocks + global average pool: image ``(B, C, D, H, W)`` -> features ``(B, F)``.

    Args:
        in_channels: Image channels.
        width: Stem output channels (8 in TSAN).
        num_blocks: Number of blocks (5 in TSAN); F = width * 3**num_blocks.
        norm: Normalisation after each convolution (``batch`` in TSAN).
        act: Activation (``elu`` in TSAN).
        se_reduction: Squeeze-excitation reduction (16 in TSAN).
    """

    def __init__(self, in_channels: int = 1, width: int = 8, num_blocks: int = 5,
                 norm: str = "batch", act: str = "elu", se_reduction: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, width, kernel_size=7, padding=1, dilation=2), make_act(act)
        )
        channels = width
        blocks = []
        for _ in range(num_blocks):
            blocks.append(ScaleDenseBlock(channels, norm, act, se_reduction))
            channels *= 3
        self.blocks = nn.Sequential(*blocks)
        self.num_features = channels
        self.min_size = STEM_SHRINK + 2**num_blocks

    def feature_map(self, x: Tensor) -> Tensor:
        """``(B, C, D, H, W) -> (B, F, D', H', W')`` before pooling (2x3x2 at 91x109x91)."""
        return self.blocks(self.stem(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.feature_map(x).mean(dim=(2, 3, 4))  # (B, F, d, h, w) -> (B, F)


def scaledense_sizes(shape: tuple[int, int, int], num_blocks: int = 5) -> list[tuple[int, ...]]:
    """Spatial sizes after the stem and after each block, e.g. 91x109x91 -> ... -> 2x3x2."""
    size = tuple(s - STEM_SHRINK for s in shape)
    sizes = [size]
    for _ in range(num_blocks):
        size = tuple(s // 2 for s in size)
        sizes.append(size)
    return sizes
