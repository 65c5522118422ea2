"""TSAN's ranking terms: the age-difference pair loss and a weight-free Spearman loss.

The original Spearman term ranks predictions with a pretrained LSTM sorter (SoDeep) tied to
the batch size. Here prediction ranks are differentiable pairwise-sigmoid soft ranks,
``r_i = 1 + sum_{j != i} sigmoid((p_i - p_j) / tau)``, which equal the true (average-tie)
ranks when the predictions are far apart relative to ``tau``: no pretrained file, any batch
size. Both rank vectors are mapped to ``(N - r) / N`` and compared with MSE.
"""

from __future__ import annotations

import torch
from torch import Tensor

from brainage.errors import InputError
from brainage.losses.regression import check_same_shape


def random_pairs(n: int, num_pairs: int | None = None, generator: torch.Generator | None = None,
                 device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Draw ``num_pairs`` (default n) index pairs (a, b) uniformly, with replacement.

    Args:
        n: Batch size.
        num_pairs: Number of pairs; TSAN draws one per sample.
        generator: A seeded CPU generator for reproducible pairs.
        device: Where the indices go.
    """
    if n < 1:
        raise InputError(f"need at least one sample to draw pairs, got {n}.")
    k = n if num_pairs is None else num_pairs
    idx = torch.randint(0, n, (2, k), generator=generator)  # (2, K) on the CPU
    idx = idx.to(device) if device is not None else idx
    return idx[0], idx[1]


def age_difference_loss(pred: Tensor, target: Tensor, pairs: tuple[Tensor, Tensor] | None = None,
                        generator: torch.Generator | None = None) -> Tensor:
    """``mean(((p_a - p_b) - (y_a - y_b))**2)`` over random (or given) index pairs.

    Args:
        pred: ``(B,)`` predicted ages.
        target: ``(B,)`` true ages.
        pairs: Index tensors ``(a, b)``; drawn with :func:`random_pairs` when omitted.
        generator: Seeded generator used when drawing pairs.
    """
    check_same_shape(pred, target)
    a, b = pairs if pairs is not None else random_pairs(pred.shape[0], generator=generator,
                                                        device=pred.device)
    target = target.to(pred.dtype)
    diff = (pred[a] - pred[b]) - (target[a] - target[b])  # (K,)
    return diff.pow(2).mean()


def average_ranks(x: Tensor) -> Tensor:
    """1-based ranks of ``x`` ``(N,)``, ties get their average rank (scipy's ``rankdata``)."""
    less = (x[None, :] < x[:, None]).sum(dim=1)  # (N,) how many are smaller
    equal = (x[None, :] == x[:, None]).sum(dim=1)  # (N,) including itself
    return (1 + less + (equal - 1) / 2).to(torch.get_default_dtype())


def soft_ranks(x: Tensor, temperature: float = 1.0) -> Tensor:
    """Differentiable 1-based ranks ``1 + sum_{j != i} sigmoid((x_i - x_j) / tau)``: ``(N,)``.

    Ties get the average rank, like :func:`average_ranks`; for gaps much larger than
    ``temperature`` the two agree.
    """
    if not temperature > 0:
        raise InputError(f"temperature must be > 0, got {temperature!r}.")
    pairwise = torch.sigmoid((x[:, None] - x[None, :]) / temperature)  # (N, N), diagonal 0.5
    return 0.5 + pairwise.sum(dim=1)


def spearman_loss(pred: Tensor, target: Tensor, temperature: float = 1.0) -> Tensor:
    """MSE between ``(N - r)/N`` of true average ranks and of soft prediction ranks.

    Args:
        pred: ``(B,)`` predicted ages.
        target: ``(B,)`` true ages.
        temperature: Soft-rank temperature in the predictions' units (years).

    Returns:
        Scalar; ~0 for a perfectly ordered batch, any batch size (0 for B = 1).
    """
    check_same_shape(pred, target)
    if pred.ndim != 1:
        raise InputError(f"spearman_loss needs (B,) predictions, got {tuple(pred.shape)}.")
    n = pred.shape[0]
    true = (n - average_ranks(target.detach())) / n  # (B,)
    soft = (n - soft_ranks(pred, temperature)) / n  # (B,)
    return (soft - true.to(soft)).pow(2).mean()
