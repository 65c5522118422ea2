"""Small age helpers shared by models and evaluation (no torch import)."""

from __future__ import annotations

from typing import Any

import numpy as np


def discretize_age(age: Any, step: float = 5.0) -> Any:
    """Round ages to the nearest multiple of `step`, halves up: ``step * floor(a/step + 0.5)``.

    TSAN's stage 2 refines this discretized stage-1 age (Liu et al., MICCAI 2020).
    62.5 -> 65, 57.4 -> 55, 57.5 -> 60. A torch tensor gives a tensor of the same shape (not
    differentiable); anything else gives a float numpy array.
    """
    if hasattr(age, "floor") and not isinstance(age, np.ndarray):  # a torch.Tensor
        return step * (age / step + 0.5).floor()
    return step * np.floor(np.asarray(age, dtype=float) / step + 0.5)
