"""Small building blocks shared by the model families: norms, activations, init, covariates."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brainage.errors import InputError

NORMS = ("batch", "instance", "none")
ACTS = ("relu", "elu", "leaky_relu", "gelu", "silu")


def make_norm(norm: str, channels: int) -> nn.Module:
    """A 3D normalisation layer by name: ``batch``, ``instance`` (affine) or ``none``."""
    if norm == "batch":
        return nn.BatchNorm3d(channels)
    if norm == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if norm == "none":
        return nn.Identity()
    raise InputError(f"unknown norm {norm!r}. Fix: use one of {', '.join(NORMS)}.")


def make_act(act: str) -> nn.Module:
    """An activation by name: ``relu``, ``elu``, ``leaky_relu``, ``gelu`` or ``silu``."""
    table = {
        "relu": nn.ReLU, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU,
        "silu": nn.SiLU,
    }
    if act not in table:
        raise InputError(f"unknown act {act!r}. Fix: use one of {', '.join(ACTS)}.")
    return table[act]()


def check_positive(**values: float) -> None:
    """Raise a clear error unless every named value is > 0."""
    for name, value in values.items():
        if not value > 0:
            raise InputError(f"{name} must be > 0, got {value!r}. Fix: pass a positive value.")


def check_dropout(dropout: float) -> None:
    """Raise unless ``0 <= dropout < 1``."""
    if not 0.0 <= dropout < 1.0:
        raise InputError(f"dropout must be in [0, 1), got {dropout!r}.")


def init_tsan(module: nn.Module) -> None:
    """TSAN init: Kaiming-normal convs, Xavier-normal linears, norms weight 1 / bias 0.

    Conv and linear biases keep PyTorch's default (uniform) init, as in the published code.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
        elif isinstance(m, (nn.BatchNorm3d, nn.InstanceNorm3d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def init_resnet(module: nn.Module) -> None:
    """torchvision-style init: Kaiming-normal (fan_out) convs, norms 1/0, linears N(0, 0.01)."""
    for m in module.modules():
        if isinstance(m, nn.Conv3d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.InstanceNorm3d)) and m.weight is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


def sex_one_hot(sex: Tensor, batch: int) -> Tensor:
    """Sex as TSAN's one-hot pair (column 0 = female, column 1 = male).

    Args:
        sex: ``(B,)`` codes 0 = female, 1 = male, or an already one-hot ``(B, 2)``.
        batch: Expected batch size B.

    Returns:
        ``(B, 2)`` float tensor.
    """
    if sex.ndim == 1 and sex.shape[0] == batch:
        codes = sex.round().long()
        if ((codes != 0) & (codes != 1)).any():
            raise ValueError("sex codes must be 0 (female) or 1 (male).")
        return nn.functional.one_hot(codes, 2).to(torch.get_default_dtype())  # (B,) -> (B, 2)
    if sex.shape == (batch, 2):
        return sex.to(torch.get_default_dtype())
    raise ValueError(
        f"sex must have shape ({batch},) with 0/1 codes or ({batch}, 2) one-hot, "
        f"got {tuple(sex.shape)}."
    )
