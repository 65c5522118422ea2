"""TSAN's combined objective ``L = L_main + lam * (L_spearman + beta * L_diff)``.

For stage 2, MSE on the residual equals MSE on the final age (residual - (y - d) =
(d + residual) - y), so the same function serves both stages when called on final ages.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from brainage.errors import InputError
from brainage.losses.ranking import age_difference_loss, spearman_loss
from brainage.losses.regression import regression_loss


def tsan_loss(pred: Tensor, target: Tensor, lam: float = 10.0, beta: float = 1.0,
              main: str = "mse", temperature: float = 1.0,
              pairs: tuple[Tensor, Tensor] | None = None,
              generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """TSAN loss terms for predicted ages ``(B,)`` against true ages ``(B,)``.

    Args:
        pred: Final predicted ages.
        target: True ages.
        lam: Weight of the ranking terms (10).
        beta: Weight of the age-difference term inside them (1).
        main: Main loss, ``mse`` (TSAN) or ``l1``.
        temperature: Soft-rank temperature of the Spearman term.
        pairs: Fixed index pairs for the difference term (else drawn from ``generator``).
        generator: Seeded generator for the pairs.

    Returns:
        ``{"loss": total, "main": ..., "spearman": ..., "diff": ...}``.
    """
    main_term = regression_loss(main)(pred, target)
    rank = spearman_loss(pred, target, temperature)
    diff = age_difference_loss(pred, target, pairs=pairs, generator=generator)
    total = main_term + lam * (rank + beta * diff)
    return {"loss": total, "main": main_term, "spearman": rank, "diff": diff}


class TSANLoss(nn.Module):
    """Module form of :func:`tsan_loss` with its own seeded pair generator."""

    def __init__(self, lam: float = 10.0, beta: float = 1.0, main: str = "mse",
                 temperature: float = 1.0, seed: int | None = 0) -> None:
        super().__init__()
        if lam < 0 or beta < 0:
            raise InputError(f"lam and beta must be >= 0, got lam={lam}, beta={beta}.")
        regression_loss(main)  # fail now on an unknown name
        self.lam, self.beta, self.main, self.temperature = lam, beta, main, temperature
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)

    def forward(self, pred: Tensor, target: Tensor) -> dict[str, Tensor]:
        return tsan_loss(pred, target, self.lam, self.beta, self.main, self.temperature,
                         generator=self.generator)
