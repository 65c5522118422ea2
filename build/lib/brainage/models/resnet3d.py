"""3D ResNet-18 encoder, as used by Barbano et al. (ISBI 2023) for contrastive brain age.

Stem Conv3d(k7, s2, p3) -> BN -> ReLU -> MaxPool(k3, s2, p1); four stages of BasicBlocks
([2, 2, 2, 2]) with width, 2, 4, 8 x width channels (64/128/256/512), stride 2 from the
second stage on; global average pool -> 8 x width features (512); head Linear(F -> 1).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from brainage.errors import InputError
from brainage.models.base import BrainAgeModel, check_num_outputs
from brainage.models.heads import LinearHead, LinearHeadMixin
from brainage.models.input_stage import DEFAULT_RANGE
from brainage.models.layers import check_dropout, check_positive, init_resnet, make_act, make_norm
from brainage.models.registry import register_model

PAPER = ("He et al., Deep residual learning, CVPR 2016; 3D encoder of Barbano et al., "
         "Contrastive learning for regression in multi-site brain age prediction, ISBI 2023")


class BasicBlock3d(nn.Module):
    """conv3-norm-act-conv3-norm + shortcut (1x1 conv + norm when the shape changes) -> act."""

    def __init__(self, in_channels: int, channels: int, stride: int, norm: str, act: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, channels)
        self.act = make_act(act)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = make_norm(norm, channels)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, channels, 1, stride=stride, bias=False),
                make_norm(norm, channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(self.act(self.bn1(self.conv1(x)))))  # (B, C, ...) stride s
        return self.act(out + self.downsample(x))


class ResNet3D(LinearHeadMixin, BrainAgeModel):
    """3D ResNet with BasicBlocks and a linear regression head.

    Args:
        in_channels: Image channels.
        num_outputs: Outputs per subject (1 = age).
        width: Channels of the stem and the first stage (64); stages use 1, 2, 4, 8 x width.
        layers: BasicBlocks per stage ((2, 2, 2, 2) = ResNet-18).
        norm: Norm layer (``batch``).
        act: Activation (``relu``).
        dropout: Dropout before the linear head.
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, width: int = 64,
                 layers: Sequence[int] = (2, 2, 2, 2), norm: str = "batch", act: str = "relu",
                 dropout: float = 0.0, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        layers = [int(n) for n in layers]
        if not layers or min(layers) < 1:
            raise InputError(f"layers must list >= 1 block per stage, got {layers!r}.")
        check_positive(in_channels=in_channels, width=width)
        check_dropout(dropout)
        check_num_outputs(num_outputs)
        self.in_channels, self.num_outputs, self.dropout = in_channels, num_outputs, dropout
        self.stem = nn.Sequential(
            nn.Conv3d(first, width, 7, stride=2, padding=3, bias=False),
            make_norm(norm, width), make_act(act), nn.MaxPool3d(3, stride=2, padding=1),
        )
        stages, c_in = [], width
        for i, n in enumerate(layers):
            c = width * 2**i
            blocks = [BasicBlock3d(c_in if j == 0 else c, c, 2 if (i > 0 and j == 0) else 1,
                                   norm, act) for j in range(n)]
            stages.append(nn.Sequential(*blocks))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.num_features = c_in
        self.head = LinearHead(self.num_features, num_outputs, dropout)
        init_resnet(self)

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> features ``(B, 8 x width)``."""
        x = self.prepare_input(x)
        return self.stages(self.stem(x)).mean(dim=(2, 3, 4))  # (B, F, d, h, w) -> (B, F)

    def _init_head(self, head: nn.Module) -> None:
        init_resnet(head)


@register_model(ResNet3D, presets={"layers": [2, 2, 2, 2]},
                tiny={"width": 4, "layers": [1, 1, 1, 1]}, paper=PAPER)
def resnet18_3d(**kwargs: object) -> ResNet3D:
    """3D ResNet-18 encoder (contrastive paper) + Linear(512 -> 1) regression head."""
    return ResNet3D(**kwargs)  # type: ignore[arg-type]
