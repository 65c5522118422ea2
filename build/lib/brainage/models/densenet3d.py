"""3D DenseNet-121 encoder, as used by Barbano et al. (ISBI 2023).

Stem Conv3d(k7, s2, p3) -> BN -> ReLU -> MaxPool(k3, s2, p1) with 64 channels; dense blocks
of 6/12/24/16 bottleneck layers (BN-ReLU-Conv1 to 4 x growth, BN-ReLU-Conv3 to growth = 32),
transitions BN-ReLU-Conv1 (half the channels) -> AvgPool(2); global average pool -> 1024.
Like the contrastive paper's encoder (and unlike torchvision) there is no final BN-ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from brainage.errors import InputError
from brainage.models.base import BrainAgeModel, check_num_outputs
from brainage.models.heads import LinearHead, LinearHeadMixin
from brainage.models.input_stage import DEFAULT_RANGE
from brainage.models.layers import check_dropout, check_positive, make_act, make_norm
from brainage.models.registry import register_model

PAPER = ("Huang et al., Densely connected convolutional networks, CVPR 2017; 3D encoder of "
         "Barbano et al., ISBI 2023")


class DenseLayer3d(nn.Module):
    """Bottleneck layer: norm-act-conv1 (bn_size x growth) -> norm-act-conv3 (growth)."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, norm: str, act: str,
                 memory_efficient: bool) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.bottleneck = nn.Sequential(
            make_norm(norm, in_channels), make_act(act), nn.Conv3d(in_channels, mid, 1, bias=False)
        )
        self.conv = nn.Sequential(
            make_norm(norm, mid), make_act(act), nn.Conv3d(mid, growth_rate, 3, padding=1,
                                                           bias=False)
        )
        self.memory_efficient = memory_efficient

    def forward(self, x: Tensor) -> Tensor:
        if self.memory_efficient and x.requires_grad:
            mid = checkpoint(self.bottleneck, x, use_reentrant=False)
        else:
            mid = self.bottleneck(x)
        return self.conv(mid)  # (B, C, ...) -> (B, growth, ...)


class DenseBlock3d(nn.Module):
    """``num_layers`` dense layers; each sees the concatenation of all previous outputs."""

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int,
                 norm: str, act: str, memory_efficient: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer3d(in_channels + i * growth_rate, growth_rate, bn_size, norm, act,
                         memory_efficient)
            for i in range(num_layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)  # (B, C, ...) -> (B, C + growth, ...)
        return x


def _transition(in_channels: int, out_channels: int, norm: str, act: str) -> nn.Sequential:
    return nn.Sequential(
        make_norm(norm, in_channels), make_act(act),
        nn.Conv3d(in_channels, out_channels, 1, bias=False), nn.AvgPool3d(2),
    )


class DenseNet3D(LinearHeadMixin, BrainAgeModel):
    """3D DenseNet-BC with a linear regression head.

    Args:
        in_channels: Image channels.
        num_outputs: Outputs per subject (1 = age).
        width: Stem channels (64).
        growth_rate: Channels added per dense layer (32).
        blocks: Dense layers per block ((6, 12, 24, 16) = DenseNet-121).
        bn_size: Bottleneck multiplier (4).
        norm: Norm layer (``batch``).
        act: Activation (``relu``).
        dropout: Dropout before the linear head.
        memory_efficient: Recompute bottlenecks in the backward pass (less memory, slower).
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, width: int = 64,
                 growth_rate: int = 32, blocks: Sequence[int] = (6, 12, 24, 16),
                 bn_size: int = 4, norm: str = "batch", act: str = "relu", dropout: float = 0.0,
                 memory_efficient: bool = False, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        blocks = [int(n) for n in blocks]
        if not blocks or min(blocks) < 1:
            raise InputError(f"blocks must list >= 1 layer per block, got {blocks!r}.")
        check_positive(in_channels=in_channels, width=width, growth_rate=growth_rate,
                       bn_size=bn_size)
        check_dropout(dropout)
        check_num_outputs(num_outputs)
        self.in_channels, self.num_outputs, self.dropout = in_channels, num_outputs, dropout
        stem = [nn.Conv3d(first, width, 7, stride=2, padding=3, bias=False),
                make_norm(norm, width), make_act(act), nn.MaxPool3d(3, stride=2, padding=1)]
        body, c = [], width
        for i, n in enumerate(blocks):
            body.append(DenseBlock3d(n, c, growth_rate, bn_size, norm, act, memory_efficient))
            c += n * growth_rate
            if i < len(blocks) - 1:
                body.append(_transition(c, c // 2, norm, act))
                c //= 2
        self.features = nn.Sequential(*stem, *body)
        self.num_features = c
        n_tr = len(blocks) - 1  # stem + pool take ceil(n/2) twice; each transition halves
        self.min_input_shape = (4 * (2**n_tr - 1) + 1,) * 3
        self.head = LinearHead(self.num_features, num_outputs, dropout)
        _init_densenet(self)

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> features ``(B, F)``."""
        x = self.prepare_input(x)
        return self.features(x).mean(dim=(2, 3, 4))  # (B, F, d, h, w) -> (B, F)

    def _init_head(self, head: nn.Module) -> None:
        _init_densenet(head)


def _init_densenet(module: nn.Module) -> None:
    """Kaiming-normal convs, norms 1/0, linear biases 0 (torchvision's DenseNet init)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, (nn.BatchNorm3d, nn.InstanceNorm3d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)


@register_model(DenseNet3D, presets={"blocks": [6, 12, 24, 16]},
                tiny={"width": 8, "growth_rate": 4, "blocks": [1, 1], "bn_size": 2},
                paper=PAPER)
def densenet121_3d(**kwargs: object) -> DenseNet3D:
    """3D DenseNet-121 encoder (contrastive paper) + Linear(1024 -> 1) regression head."""
    return DenseNet3D(**kwargs)  # type: ignore[arg-type]
