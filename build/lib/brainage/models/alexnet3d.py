"""AlexNet3D encoder (Abrol et al., Nature Communications 2021), as used by Barbano et al.

Conv3d(k5, s2) -> BN -> ReLU -> MaxPool(k3, s3); Conv3d(k3) -> BN -> ReLU -> MaxPool(k3, s3);
three Conv3d(k3, p1) -> BN -> ReLU; global max pool -> 128 features. Channels
64-128-192-192-128. Head Linear(128 -> 1).
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

PAPER = ("Abrol et al., Deep learning encodes robust discriminative neuroimaging "
         "representations, Nat. Commun. 2021; encoder of Barbano et al., ISBI 2023")


def _conv(c_in: int, c_out: int, k: int, stride: int, pad: int, norm: str, act: str
          ) -> list[nn.Module]:
    return [nn.Conv3d(c_in, c_out, k, stride=stride, padding=pad), make_norm(norm, c_out),
            make_act(act)]


def alexnet3d_min_size() -> int:
    """Smallest axis length that survives conv5/s2, pool3/s3, conv3, pool3/s3 (= 33)."""
    n = 1
    while True:
        a = (n - 5) // 2 + 1
        b = (a // 3 - 2) // 3 if a >= 5 else 0
        if a >= 1 and b >= 1:
            return n
        n += 1


class AlexNet3D(LinearHeadMixin, BrainAgeModel):
    """AlexNet3D with a linear regression head.

    Args:
        in_channels: Image channels.
        num_outputs: Outputs per subject (1 = age).
        channels: The five conv widths (64, 128, 192, 192, 128); features = channels[-1].
        norm: Norm layer (``batch``).
        act: Activation (``relu``).
        dropout: Dropout before the linear head.
        input_pool: Average-pool the input by this factor first (1 = off).
        input_bins, input_range: Intensity bins before pooling (0 = off) and the range of
            their centres (:mod:`brainage.models.input_stage`).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1,
                 channels: Sequence[int] = (64, 128, 192, 192, 128), norm: str = "batch",
                 act: str = "relu", dropout: float = 0.0, input_pool: int = 1,
                 input_bins: int = 0, input_range: Sequence[float] = DEFAULT_RANGE) -> None:
        super().__init__()
        first = self.set_input(in_channels, input_pool, input_bins, input_range)
        c = [int(v) for v in channels]
        if len(c) != 5:
            raise InputError(f"alexnet3d needs 5 channel widths, got {list(channels)!r}.")
        check_positive(in_channels=in_channels, **{f"channels[{i}]": v for i, v in enumerate(c)})
        check_dropout(dropout)
        check_num_outputs(num_outputs)
        self.in_channels, self.num_outputs, self.dropout = in_channels, num_outputs, dropout
        self.features = nn.Sequential(
            *_conv(first, c[0], 5, 2, 0, norm, act), nn.MaxPool3d(3, stride=3),
            *_conv(c[0], c[1], 3, 1, 0, norm, act), nn.MaxPool3d(3, stride=3),
            *_conv(c[1], c[2], 3, 1, 1, norm, act),
            *_conv(c[2], c[3], 3, 1, 1, norm, act),
            *_conv(c[3], c[4], 3, 1, 1, norm, act),
        )
        self.num_features = c[4]
        self.min_input_shape = (alexnet3d_min_size(),) * 3
        self.head = LinearHead(self.num_features, num_outputs, dropout)
        init_resnet(self)

    def forward_features(self, x: Tensor, **cov: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> features ``(B, F)`` by global max pooling."""
        x = self.prepare_input(x)
        return self.features(x).amax(dim=(2, 3, 4))  # (B, F, d, h, w) -> (B, F)

    def _init_head(self, head: nn.Module) -> None:
        init_resnet(head)


@register_model(AlexNet3D, tiny={"channels": [4, 8, 8, 8, 8]}, paper=PAPER)
def alexnet3d(**kwargs: object) -> AlexNet3D:
    """AlexNet3D encoder (Abrol et al. 2021; contrastive paper) + Linear(128 -> 1) head."""
    return AlexNet3D(**kwargs)  # type: ignore[arg-type]
