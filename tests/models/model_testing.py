"""Helpers for model tests: tiny inputs with unequal axes and example covariates."""

from __future__ import annotations

import torch

#: Base test volume; each model gets at least its own minimum, axes kept unequal.
BASE_SHAPE = (24, 28, 20)


def input_shape(model: torch.nn.Module) -> tuple[int, int, int]:
    """Smallest shape >= BASE_SHAPE and >= the model's minimum, with unequal axes."""
    offsets = [b - min(BASE_SHAPE) for b in BASE_SHAPE]  # (4, 8, 0)
    return tuple(  # type: ignore[return-value]
        max(b, m + o) for b, m, o in zip(BASE_SHAPE, model.min_input_shape, offsets, strict=True)
    )


def example_covariates(model: torch.nn.Module, batch: int) -> dict[str, torch.Tensor]:
    """Values for every covariate the model requires."""
    cov: dict[str, torch.Tensor] = {}
    if "sex" in model.covariates:
        cov["sex"] = torch.arange(batch) % 2
    if "stage1_age" in model.covariates:
        cov["stage1_age"] = torch.linspace(22.4, 78.6, batch)
    return cov
