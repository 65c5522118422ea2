"""TGB-GAN networks (Li et al., MIUA 2021): autoencoder generator and WGAN-GP patch critic.

Generator (an autoencoder, no normalisation, no skips): five Conv3d(k3, s2, p1) + ReLU with
64/128/256/512/512 channels take a 96^3 volume to a 3x3x3x512 latent; five
ConvTranspose3d(k3, s2, p1, output_padding 1) + ReLU with 256/256/128/64/32 channels take
it back to 96^3, then a bias-free Conv3d 1x1x1 to one channel + ReLU. 18,196,352
parameters.

Critic: four Conv3d(k3, s2, p1) + ReLU (64/128/256/512) then a bias-free Conv3d(k3, p1) to a
one-channel patch map (6^3 at 96^3); the score of a volume is the mean of its map.
4,661,376 parameters. (The output convs of both are bias-free, as in the published code.)

Init (:func:`init_tgbgan`): He-normal weights with the 3-D fan-in, zero biases. PyTorch's
default init shrinks the signal through ten ReLU layers until every voxel of the output
has the same sign, so the final ReLU is dead for about half of the seeds (output all 0,
no gradient: 2 of 4 seeds at full width on 32^3). The published code used a He-like
truncated normal with a 2-D fan (std sqrt(2 / (k^2 C_out))) and zero biases.

The task-guided regressor R is :class:`~brainage.models.vgg3d.VGG3D`, an ordinary age model.
Both networks here are registry entries of kind ``"generator"`` / ``"critic"``: built, saved
and loaded like the age models, listed with ``list_models(kind=...)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn

from brainage.errors import InputError
from brainage.models.layers import check_positive, make_act
from brainage.models.registry import register_model

PAPER = ("Li et al., Image augmentation using a task guided generative adversarial network "
         "for age estimation on brain MRI (TGB-GAN), MIUA 2021")


def check_volume(x: Tensor, channels: int, multiple: int, what: str) -> None:
    """Raise unless ``x`` is ``(B, channels, D, H, W)`` with every axis a multiple of ``multiple``.

    Args:
        x: Input tensor.
        channels: Expected channel count.
        multiple: Required divisor of each spatial axis (1 = any size).
        what: Name of the network, for the message.
    """
    if x.ndim != 5 or x.shape[1] != channels:
        raise ValueError(
            f"{what} input must have shape (B, {channels}, D, H, W), got {tuple(x.shape)}. "
            "Fix: add the batch and channel axes (x[None, None])."
        )
    bad = [int(s) for s in x.shape[2:] if s % multiple]
    if bad:
        raise InputError(
            f"{what} input of spatial size {tuple(x.shape[2:])} has axes {bad} that are not "
            f"multiples of {multiple} (2 ** depth), so the decoder could not restore them. "
            "Fix: prepare the scans on a grid whose axes divide by it (the 'gan' grid is 96^3), "
            "or use fewer encoder stages."
        )


def init_tgbgan(module: nn.Module) -> None:
    """He-normal convs (std ``sqrt(2 / fan_in)``) and zero biases, in place.

    The fan-in of a stride-2 transposed conv counts the ``C_in * k^3 / 8`` taps that reach
    one output voxel on average, so both halves of the autoencoder keep the signal's scale.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
            fan_in = m.in_channels * math.prod(m.kernel_size)
            if isinstance(m, nn.ConvTranspose3d):
                fan_in /= math.prod(m.stride)  # each output voxel sees 1/8 of the taps
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_in))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _widths(name: str, values: Sequence[int]) -> list[int]:
    widths = [int(v) for v in values]
    if not widths:
        raise InputError(f"{name} must list at least one channel width, got {list(values)!r}.")
    check_positive(**{f"{name}[{i}]": w for i, w in enumerate(widths)})
    return widths


def _down(c_in: int, c_out: int, act: str) -> list[nn.Module]:
    return [nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), make_act(act)]  # (D) -> (D/2)


def _up(c_in: int, c_out: int, act: str) -> list[nn.Module]:
    # (d-1)*2 - 2*1 + 3 + output_padding 1 = 2d: 3 -> 6 -> ... -> 96 exactly.
    return [nn.ConvTranspose3d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
            make_act(act)]


class TGBGenerator(nn.Module):
    """TGB-GAN autoencoder generator: ``encode`` to a spatial latent, ``decode`` back.

    Args:
        in_channels: Image channels (the reconstruction has the same number).
        encoder_channels: Widths of the stride-2 encoder convs; their number is the depth
            (paper: 64, 128, 256, 512, 512). Inputs need axes divisible by ``2 ** depth``.
        decoder_channels: Widths of the stride-2 transposed convs, one per encoder stage
            (paper: 256, 256, 128, 64, 32).
        act: Activation after every conv (``relu``).
        output_relu: ReLU on the 1x1x1 output conv (paper: True; images are in [0, 1]).

    Attributes:
        size_multiple: ``2 ** depth``; every input axis must be a multiple of it.
        latent_channels: Channels of the latent (``encoder_channels[-1]``).
        config: ``{"name": ..., "kwargs": {...}}`` filled in by ``create_model``.
    """

    def __init__(self, in_channels: int = 1,
                 encoder_channels: Sequence[int] = (64, 128, 256, 512, 512),
                 decoder_channels: Sequence[int] = (256, 256, 128, 64, 32),
                 act: str = "relu", output_relu: bool = True) -> None:
        super().__init__()
        check_positive(in_channels=in_channels)
        enc = _widths("encoder_channels", encoder_channels)
        dec = _widths("decoder_channels", decoder_channels)
        if len(dec) != len(enc):
            raise InputError(
                f"decoder_channels has {len(dec)} stages but encoder_channels has {len(enc)}; "
                "each upsampling stage undoes one downsampling stage. Fix: give both lists the "
                "same length."
            )
        self.config: dict[str, object] = {}
        self.in_channels, self.latent_channels = int(in_channels), enc[-1]
        self.size_multiple = 2 ** len(enc)
        self.encoder = nn.Sequential(*(
            layer for i, c in enumerate(enc) for layer in _down([in_channels, *enc][i], c, act)
        ))
        self.decoder = nn.Sequential(*(
            layer for i, c in enumerate(dec) for layer in _up([enc[-1], *dec][i], c, act)
        ))
        self.out = nn.Conv3d(dec[-1], in_channels, kernel_size=1, bias=False)
        self.out_act = nn.ReLU() if output_relu else nn.Identity()
        init_tgbgan(self)

    def latent_shape(self, spatial: Sequence[int]) -> tuple[int, int, int, int]:
        """``(C, d, h, w)`` of the latent for an input of spatial size ``spatial``."""
        d, h, w = (int(s) // self.size_multiple for s in spatial)
        return self.latent_channels, d, h, w

    def encode(self, x: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> latent ``(B, 512, D/32, H/32, W/32)`` (paper sizes)."""
        check_volume(x, self.in_channels, self.size_multiple, "generator")
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        """Latent ``(B, 512, d, h, w)`` -> image ``(B, C, 32d, 32h, 32w)`` (paper sizes)."""
        check_volume(z, self.latent_channels, 1, "generator decoder")
        return self.out_act(self.out(self.decoder(z)))

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction ``G(x)``, same shape as ``x``."""
        return self.decode(self.encode(x))


class PatchCritic(nn.Module):
    """WGAN-GP critic: a patch map of realness scores, averaged to one score per volume.

    Args:
        in_channels: Image channels.
        channels: Widths of the stride-2 convs (paper: 64, 128, 256, 512); the patch map is
            the input size divided by ``2 ** len(channels)`` (rounded up).
        act: Activation after each stride-2 conv (``relu``; no norm, as WGAN-GP requires
            per-sample gradients).

    Attributes:
        config: ``{"name": ..., "kwargs": {...}}`` filled in by ``create_model``.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256, 512),
                 act: str = "relu") -> None:
        super().__init__()
        check_positive(in_channels=in_channels)
        widths = _widths("channels", channels)
        self.config: dict[str, object] = {}
        self.in_channels = int(in_channels)
        self.features = nn.Sequential(*(
            layer for i, c in enumerate(widths) for layer in _down([in_channels, *widths][i], c, act)
        ))
        self.out = nn.Conv3d(widths[-1], 1, 3, padding=1, bias=False)
        init_tgbgan(self)

    def patch_map(self, x: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> scores ``(B, 1, D/16, H/16, W/16)`` (6^3 at 96^3)."""
        check_volume(x, self.in_channels, 1, "critic")
        return self.out(self.features(x))

    def forward(self, x: Tensor) -> Tensor:
        """Image ``(B, C, D, H, W)`` -> score ``(B,)``, the mean of the patch map."""
        return self.patch_map(x).mean(dim=(1, 2, 3, 4))  # (B, 1, d, h, w) -> (B,)


@register_model(
    TGBGenerator, kind="generator", paper=PAPER,
    tiny={"encoder_channels": [4, 8, 8], "decoder_channels": [8, 4, 4]},
)
def tgbgan_generator(**kwargs: object) -> TGBGenerator:
    """TGB-GAN autoencoder generator (Li et al. 2021): 5 stride-2 convs down, 5 up, ~18 M."""
    return TGBGenerator(**kwargs)  # type: ignore[arg-type]


@register_model(PatchCritic, kind="critic", paper=PAPER, tiny={"channels": [4, 8, 8]})
def tgbgan_critic(**kwargs: object) -> PatchCritic:
    """TGB-GAN WGAN-GP patch critic (Li et al. 2021): 4 stride-2 convs, mean of a patch map."""
    return PatchCritic(**kwargs)  # type: ignore[arg-type]
