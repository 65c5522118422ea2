"""Point-regression losses with a shape check (a (B,) vs (B, 1) broadcast silently gives B x B)."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from brainage.registry import Registry

PointLoss = Callable[[Tensor, Tensor], Tensor]


def check_same_shape(pred: Tensor, target: Tensor) -> None:
    """Raise unless prediction and target have the same shape (a programming error: the
    training code passes both as ``(B,)``)."""
    if pred.shape != target.shape:
        raise ValueError(
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


#: Point losses on predicted ages, by name (also TSAN's ``main`` term).
REGRESSION_LOSSES: Registry[PointLoss] = Registry("regression loss", "mse or l1")
REGRESSION_LOSSES.add("mse", mse_loss)
REGRESSION_LOSSES.add("l1", l1_loss)


def regression_loss(name: str) -> PointLoss:
    """The loss function called ``name`` (``mse`` or ``l1``).

    Raises:
        UnknownNameError: another name.
    """
    return REGRESSION_LOSSES.get(name)
