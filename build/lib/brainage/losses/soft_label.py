"""Age bins, Gaussian soft labels and the KL-divergence loss of SFCN (Peng et al., 2021).

A subject of age y gets, in each bin [lo, hi), the Gaussian probability mass
``Phi((hi - y)/sigma) - Phi((lo - y)/sigma)``; the network outputs log-probabilities over
the same bins and is trained with ``KL(target || prediction)`` summed over bins and averaged
over the batch. The predicted age is the expectation over bin centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from brainage.errors import InputError


@dataclass(frozen=True)
class AgeBins:
    """Equal-width age bins covering ``[start, stop)``.

    Attributes:
        start: Lower edge of the first bin (years).
        stop: Upper edge of the last bin (years).
        width: Bin width (years); ``stop - start`` must be a multiple of it.
    """

    start: float
    stop: float
    width: float

    def __post_init__(self) -> None:
        span = (self.stop - self.start) / self.width if self.width > 0 else -1.0
        if not (self.stop > self.start and self.width > 0 and abs(span - round(span)) < 1e-6):
            raise InputError(
                f"age bins need start < stop and (stop - start) a multiple of width, got "
                f"range ({self.start}, {self.stop}) with width {self.width}. "
                "Fix: e.g. age_range=(0, 100) with bin_width=2."
            )

    @classmethod
    def from_range(cls, age_range: Sequence[float], bin_width: float) -> AgeBins:
        """Bins from an ``(start, stop)`` pair and a width."""
        if len(age_range) != 2:
            raise InputError(f"age_range must be (start, stop), got {age_range!r}.")
        return cls(float(age_range[0]), float(age_range[1]), float(bin_width))

    @property
    def num_bins(self) -> int:
        """Number of bins."""
        return round((self.stop - self.start) / self.width)

    def edges(self) -> Tensor:
        """``(num_bins + 1,)`` bin edges."""
        return self.start + self.width * torch.arange(self.num_bins + 1, dtype=torch.float64)

    def centres(self) -> Tensor:
        """``(num_bins,)`` bin centres, e.g. 42.5 ... 81.5 for (42, 82) width 1."""
        return (self.edges()[:-1] + self.width / 2).to(torch.get_default_dtype())

    def check_ages(self, age: Tensor) -> None:
        """Raise a clear error if an age lies outside ``[start, stop]``."""
        bad = (age < self.start) | (age > self.stop) | ~torch.isfinite(age)
        if bad.any():
            raise InputError(
                f"age(s) {age[bad].tolist()[:5]} outside the model's bins "
                f"[{self.start}, {self.stop}]. Fix: widen age_range (e.g. (0, 100))."
            )


def soft_labels(age: Tensor, bins: AgeBins, sigma: float = 1.0, normalise: bool = True
                ) -> Tensor:
    """Gaussian soft labels: ages ``(B,)`` -> bin probabilities ``(B, num_bins)``.

    Args:
        age: True ages in years.
        bins: The bins of the model's output.
        sigma: Label spread in years; 0 gives one-hot labels of the containing bin.
        normalise: Rescale each row to sum to 1. Peng et al. keep the raw masses (rows near
            the range edges then sum to < 1); the KL minimiser is the same either way.

    Raises:
        BrainAgeError: an age outside the bins' range.
    """
    bins.check_ages(age)
    age = age.detach().to(torch.float64)
    if sigma == 0:
        idx = ((age - bins.start) / bins.width).floor().long().clamp(0, bins.num_bins - 1)
        return nn.functional.one_hot(idx, bins.num_bins).to(torch.get_default_dtype())
    edges = bins.edges().to(age.device)  # (N + 1,)
    cdf = torch.special.ndtr((edges[None, :] - age[:, None]) / sigma)  # (B, N + 1)
    mass = cdf[:, 1:] - cdf[:, :-1]  # (B, N)
    if normalise:
        mass = mass / mass.sum(dim=1, keepdim=True)
    return mass.to(torch.get_default_dtype())


def soft_label_kl_loss(log_probs: Tensor, age: Tensor, bins: AgeBins, sigma: float = 1.0,
                       normalise: bool = True) -> Tensor:
    """``KL(soft_labels(age) || exp(log_probs))``, summed over bins, averaged over the batch.

    Args:
        log_probs: ``(B, num_bins)`` log-probabilities (log_softmax output).
        age: ``(B,)`` true ages.
        bins: Bins matching ``log_probs``.
        sigma: Soft-label spread in years.
        normalise: See :func:`soft_labels`.
    """
    if log_probs.ndim != 2 or log_probs.shape[1] != bins.num_bins:
        raise InputError(
            f"log_probs must be (B, {bins.num_bins}) for these bins, got {tuple(log_probs.shape)}."
        )
    target = soft_labels(age, bins, sigma, normalise).to(log_probs)  # (B, N)
    kl = torch.xlogy(target, target) - target * log_probs  # 0 log 0 = 0
    return kl.sum(dim=1).mean()


class SoftLabelKLLoss(nn.Module):
    """Module form of :func:`soft_label_kl_loss` with fixed bins and sigma."""

    def __init__(self, age_range: Sequence[float] = (0.0, 100.0), bin_width: float = 2.0,
                 sigma: float = 1.0, normalise: bool = True) -> None:
        super().__init__()
        if not (sigma >= 0 and math.isfinite(sigma)):
            raise InputError(f"sigma must be >= 0, got {sigma!r}.")
        self.bins = AgeBins.from_range(age_range, bin_width)
        self.sigma, self.normalise = float(sigma), bool(normalise)

    def forward(self, log_probs: Tensor, age: Tensor) -> Tensor:
        return soft_label_kl_loss(log_probs, age, self.bins, self.sigma, self.normalise)


def expected_age(log_probs: Tensor, bins: AgeBins) -> Tensor:
    """Expected age ``sum_k softmax_k * centre_k``: ``(B, num_bins) -> (B,)``."""
    centres = bins.centres().to(log_probs)
    return log_probs.exp() @ centres
