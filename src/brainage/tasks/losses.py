"""Build the training criterion named in a config (the losses live in :mod:`brainage.losses`)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from brainage.errors import BrainAgeError
from brainage.models.base import BrainAgeModel

Criterion = Callable[[Tensor, Tensor], Tensor]
LOSSES: tuple[str, ...] = ("mse", "l1", "tsan", "soft_label")


def build_loss(name: str, model: BrainAgeModel, **kwargs: Any) -> Criterion:
    """A ``(prediction, age) -> scalar`` criterion.

    ``soft_label`` takes log-probabilities ``(B, bins)`` instead of predictions and uses the
    model's own bins (only models with ``forward_logits``, e.g. SFCN).

    Args:
        name: ``mse``, ``l1``, ``tsan`` or ``soft_label``.
        model: The network being trained (soft labels need its bins).
        **kwargs: Loss arguments (``tsan``: lam, beta, main, temperature, seed;
            ``soft_label``: sigma, normalise).

    Raises:
        BrainAgeError: unknown name, unknown argument, or a loss the model cannot use.
    """
    from brainage import losses

    try:
        if name in ("mse", "l1"):
            _no_kwargs(name, kwargs)
            return losses.regression_loss(name)
        if name == "tsan":
            return _Total(losses.TSANLoss(**kwargs))
        if name == "soft_label":
            return _soft_label(model, **kwargs)
    except TypeError as exc:  # unknown keyword
        raise BrainAgeError(f"loss {name!r}: {exc}. Fix: check loss.kwargs.") from exc
    close = difflib.get_close_matches(name, LOSSES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise BrainAgeError(f"unknown loss {name!r}.{hint} Valid: {', '.join(LOSSES)}.")


class _Total(nn.Module):
    """TSAN loss returning only the total; ``generator`` draws the difference pairs."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.loss = loss
        self.generator: torch.Generator = loss.generator

    def forward(self, pred: Tensor, age: Tensor) -> Tensor:
        return self.loss(pred, age)["loss"]


def _no_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    if kwargs:
        raise BrainAgeError(f"loss {name!r} takes no arguments, got {sorted(kwargs)}. "
                            "Fix: remove loss.kwargs.")


def _soft_label(model: BrainAgeModel, sigma: float = 1.0, normalise: bool = True) -> Criterion:
    from brainage.losses import soft_label_kl_loss

    bins = getattr(model, "bins", None)
    if bins is None or not hasattr(model, "forward_logits"):
        raise BrainAgeError(
            f"loss 'soft_label' needs a model with age bins and forward_logits (sfcn); "
            f"{model.config.get('name')!r} has none. Fix: use loss mse/l1/tsan or model sfcn."
        )
    return lambda log_probs, age: soft_label_kl_loss(log_probs, age, bins, sigma, normalise)
