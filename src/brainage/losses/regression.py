"""Point-regression losses with a shape check (a (B,) vs (B, 1) broadcast silently gives B x B)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from brainage.errors import BrainAgeError


def check_same_shape(pred: Tensor, target: Tensor) -> None:
    """Raise unless prediction and target have the same shape."""
    if pred.shape != target.shape:
        raise BrainAgeError(
            f"prediction shape {tuple(pred.shape)} differs from target shape "
            f"{tuple(target.shape)}. Fix: reshape both to (B,) (a (B,) vs (B, 1) pair would "
            "broadcast to (B, B))."
        )


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error ``mean((pred - target)**2)``."""
    check_same_shape(pred, target)
    return nn.functional.mse_loss(pred, target.to(pred.dtype))


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error ``mean(|pred - target|)``."""
    check_same_shape(pred, target)
    return nn.functional.l1_loss(pred, target.to(pred.dtype))


REGRESSION_LOSSES = {"mse": mse_loss, "l1": l1_loss}


def regression_loss(name: str) -> Callable[[Tensor, Tensor], Tensor]:
    """The loss function called ``name`` (``mse`` or ``l1``)."""
    if name not in REGRESSION_LOSSES:
        raise BrainAgeError(
            f"unknown regression loss {name!r}. Fix: use one of {', '.join(REGRESSION_LOSSES)}."
        )
    return REGRESSION_LOSSES[name]
