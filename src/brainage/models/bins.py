"""Widen the age bins of a soft-label model (SFCN) so they cover another cohort's ages.

Fine-tuning a model whose output is a distribution over age bins on a cohort whose ages
leave those bins needs more bins. :func:`extend_bins` adds whole bins of the same width
below and/or above, widens the model's ``age_range`` argument to match and gives the bin
layer (``model.bin_layer``) one new row per new bin, initialised from the nearest edge
bin: the same weights, the bias lowered by :data:`EDGE_DECAY` per bin away from the edge.
At the first step the model then predicts almost what the source predicted (the new bins
start as a thin tail), and every other weight is untouched. A scalar regression head
(``age_bins`` None) needs no change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from brainage.errors import InputError
from brainage.models.base import BrainAgeModel

#: Bias lowered per bin away from the edge (nats): new bins start as a decaying tail.
EDGE_DECAY = 1.0


@dataclass(frozen=True)
class BinExtension:
    """How the bins were widened.

    Attributes:
        old: ``[start, stop)`` of the source's bins (years).
        new: ``[start, stop)`` after the extension.
        below, above: New bins added below the first and above the last bin.
        width: Bin width (years).
        ages: ``(min, max)`` of the ages the bins now cover.
    """

    old: tuple[float, float]
    new: tuple[float, float]
    below: int
    above: int
    width: float
    ages: tuple[float, float]

    def message(self) -> str:
        """The sentence telling the user what was done."""
        n = self.below + self.above
        return (f"age bins extended from [{self.old[0]:g}, {self.old[1]:g}) to "
                f"[{self.new[0]:g}, {self.new[1]:g}): {n} new bin{'s' if n != 1 else ''} "
                f"initialised from the edge (the edge bin's weights, bias lowered by "
                f"{EDGE_DECAY:g} per bin away), to cover the cohort's ages "
                f"{self.ages[0]:g}-{self.ages[1]:g}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (model card, ``run.json``)."""
        return {"from": list(self.old), "to": list(self.new), "width": self.width,
                "new_bins_below": self.below, "new_bins_above": self.above,
                "cohort_ages": list(self.ages),
                "init": f"edge bin copied, bias -{EDGE_DECAY:g} per bin away"}


def extend_bins(model: BrainAgeModel, ages: Sequence[float]
                ) -> tuple[dict[str, Any], dict[str, Tensor], BinExtension | None]:
    """Constructor kwargs and weights of `model` with bins covering `ages`.

    Args:
        model: A registry model with its weights (``model.config`` holds its kwargs).
        ages: The ages the bins must cover (every labelled age of the new cohort).

    Returns:
        The kwargs (``age_range`` widened when needed), the state dict (bin-layer rows
        added), and the extension (None when nothing changed).

    Raises:
        InputError: the ages leave bins that this model cannot extend.
    """
    kwargs = dict(model.config["kwargs"])
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    bins = model.age_bins
    if bins is None or not len(ages):
        return kwargs, state, None
    below = _bins_needed(bins.start - min(ages), bins.width)
    above = _bins_needed(max(ages) - bins.stop, bins.width)
    if not below and not above:
        return kwargs, state, None
    layer = model.bin_layer
    if layer is None or "age_range" not in kwargs:
        raise InputError(
            f"the cohort's ages {min(ages):g}-{max(ages):g} leave the age bins "
            f"[{bins.start:g}, {bins.stop:g}) of model {model.config['name']!r}, which cannot "
            "extend them. Fix: fine-tune on a cohort within those ages, or train a new model.")
    new = (bins.start - below * bins.width, bins.stop + above * bins.width)
    kwargs["age_range"] = list(new)
    for name in (f"{layer}.weight", f"{layer}.bias"):
        if name in state:
            state[name] = pad_rows(state[name], below, above, name.endswith("bias"))
    return kwargs, state, BinExtension((bins.start, bins.stop), new, below, above, bins.width,
                                       (min(ages), max(ages)))


def pad_rows(rows: Tensor, below: int, above: int, is_bias: bool) -> Tensor:
    """`rows` (K, ...) with copies of its first row prepended `below` times and of its last
    appended `above` times; a bias is lowered by ``EDGE_DECAY`` per bin away."""
    step = EDGE_DECAY if is_bias else 0.0
    low = rows[:1].repeat(below, *([1] * (rows.ndim - 1)))  # (below, ...)
    high = rows[-1:].repeat(above, *([1] * (rows.ndim - 1)))  # (above, ...)
    if is_bias:
        low = low - step * torch.arange(below, 0, -1, dtype=rows.dtype)
        high = high - step * torch.arange(1, above + 1, dtype=rows.dtype)
    return torch.cat([low, rows, high])  # (below + K + above, ...)


def _bins_needed(gap: float, width: float) -> int:
    """Whole bins of `width` that cover `gap` years (0 when there is no gap)."""
    return max(0, math.ceil(gap / width - 1e-9)) if gap > 0 else 0
