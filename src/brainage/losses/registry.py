"""The training objectives a config can name, behind one registry.

Every entry says which model output it reads (``needs``): ``age`` (the ``(B,)`` predicted
age every model gives), ``log_probs`` (the ``(B, K)`` distribution over ``age_bins`` of a
model with a distribution head, such as SFCN) or ``projection`` (the ``(B, V, D)``
L2-normalised projections of V views that contrastive pretraining gives). A criterion is
called on the dict of a model's ``forward_outputs`` and the true ages, so the training code
never needs to know which model or loss it runs.

Example:
    >>> import torch
    >>> from brainage.losses.registry import build_loss
    >>> criterion = build_loss("l1")
    >>> float(criterion({"age": torch.tensor([50.0, 60.0])}, torch.tensor([52.0, 60.0])))
    1.0
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from brainage.errors import InputError
from brainage.losses.regression import REGRESSION_LOSSES
from brainage.losses.soft_label import soft_label_kl_loss
from brainage.losses.tsan import TSANLoss
from brainage.registry import Registry

if TYPE_CHECKING:
    from brainage.losses.soft_label import AgeBins


@dataclass(frozen=True)
class LossInfo:
    """One registered objective.

    Attributes:
        name: Registered name.
        description: One line for listings.
        build: ``build(age_bins, **kwargs) -> fn(output, age) -> scalar`` where ``output``
            is the model output named by ``needs``.
        needs: ``"age"``, ``"log_probs"`` or ``"projection"``.
        options: The keyword arguments ``loss.kwargs`` may set.
    """

    name: str
    description: str
    build: Callable[..., Callable[[Tensor, Tensor], Tensor]]
    needs: str = "age"
    options: tuple[str, ...] = ()


LOSSES: Registry[LossInfo] = Registry("loss", "`loss.name` in a training config; "
                                      "docs/training.md lists them")


class Criterion(nn.Module):
    """A built objective: ``criterion(outputs, age) -> scalar``.

    Attributes:
        name: The loss's registered name.
        needs: The key of ``outputs`` it reads.
        generator: The loss's own random generator (TSAN's pairs), or None; training saves
            and restores its state so a resumed run continues exactly.
    """

    def __init__(self, name: str, fn: Callable[[Tensor, Tensor], Tensor], needs: str) -> None:
        super().__init__()
        self.name, self.fn, self.needs = name, fn, needs
        self.generator: torch.Generator | None = getattr(fn, "generator", None)

    def forward(self, outputs: dict[str, Tensor], age: Tensor) -> Tensor:
        """Loss of a batch's model outputs against true ages ``(B,)``."""
        return self.fn(outputs[self.needs].float(), age.float())


def build_loss(name: str, age_bins: AgeBins | None = None, model_name: str = "the model",
               **kwargs: Any) -> Criterion:
    """Build the objective called `name`.

    Args:
        name: Registered loss name (:data:`LOSSES`).
        age_bins: The model's ``age_bins`` (needed by losses on ``log_probs``).
        model_name: For messages.
        **kwargs: The loss's arguments (``loss.kwargs`` of the config).

    Raises:
        UnknownNameError: unknown loss.
        InputError: an unknown argument, or a loss the model cannot feed.
    """
    info = LOSSES.get(name)
    if info.needs == "log_probs" and age_bins is None:
        raise InputError(
            f"loss {name!r} needs a model with a distribution over age bins (sfcn); "
            f"{model_name!r} predicts a single age. Fix: use loss mse, l1 or tsan, or model sfcn.")
    unknown = sorted(set(kwargs) - set(info.options))
    if unknown:
        hints = [k + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            k, info.options, n=1)) else "") for k in unknown]
        valid = f"valid: {', '.join(info.options)}" if info.options else "it takes none"
        raise InputError(f"loss {name!r} got unknown argument(s) {', '.join(hints)}; {valid}. "
                         "Fix: correct loss.kwargs.")
    return Criterion(name, info.build(age_bins, **kwargs), info.needs)


def _point(name: str) -> Callable[..., Callable[[Tensor, Tensor], Tensor]]:
    def build(age_bins: AgeBins | None) -> Callable[[Tensor, Tensor], Tensor]:
        return REGRESSION_LOSSES.get(name)

    return build


class _TSANTotal(nn.Module):
    """TSAN loss returning only the total; ``generator`` draws the difference pairs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self.loss = TSANLoss(**kwargs)
        self.generator = self.loss.generator

    def forward(self, pred: Tensor, age: Tensor) -> Tensor:
        return self.loss(pred, age)["loss"]


def _soft_label(age_bins: AgeBins, sigma: float = 1.0, normalise: bool = True
                ) -> Callable[[Tensor, Tensor], Tensor]:
    return lambda log_probs, age: soft_label_kl_loss(log_probs, age, age_bins, sigma, normalise)


LOSSES.add("mse", LossInfo("mse", "mean squared error on the predicted age", _point("mse")))
LOSSES.add("l1", LossInfo("l1", "mean absolute error on the predicted age", _point("l1")))
LOSSES.add("tsan", LossInfo(
    "tsan", "TSAN: MSE + lam * (Spearman + beta * age difference)",
    lambda age_bins, **kw: _TSANTotal(**kw),
    options=("lam", "beta", "main", "temperature", "seed")))
LOSSES.add("soft_label", LossInfo(
    "soft_label", "SFCN: KL divergence to Gaussian soft labels over the model's age bins",
    _soft_label, needs="log_probs", options=("sigma", "normalise")))


def _contrastive(age_bins: AgeBins | None, **kwargs: Any) -> Callable[[Tensor, Tensor], Tensor]:
    from brainage.losses.contrastive import KernelSupConLoss

    return KernelSupConLoss(**kwargs)


LOSSES.add("contrastive", LossInfo(
    "contrastive", "kernelised supervised contrastive loss on the projections of the views "
    "(Barbano et al. 2023; `brainage pretrain`)", _contrastive, needs="projection",
    options=("method", "kernel", "sigma", "temperature", "base_temperature", "bin_width",
             "normalize", "memory_limit")))
