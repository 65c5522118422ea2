"""TGB-GAN objectives (Li et al., MIUA 2021): WGAN-GP with a task-guided regression branch.

Generator G (with the regressor R trained jointly on its reconstructions)::

    L_G = -mean D(G(x)) + alpha * mean|G(x) - x| + beta * MSE(R(G(x)), age)

alpha = 10, beta = 0.1; beta = 0 is the paper's "GAN without task branch" ablation (R is then
not evaluated at all). Critic D (WGAN-GP)::

    L_D = mean D(G(x)) - mean D(x) + lambda * mean((||grad D(x_hat)||_2 - 1)^2)
    x_hat = eps * G(x) + (1 - eps) * x,   eps ~ U(0, 1) per sample,   lambda = 10

``D`` is the critic's per-sample score (the mean of its patch map). The published code
penalised the gradient of the patch map's *sum* instead, which is the mean's gradient times
the number of patches (216 at 96^3), so it drives the critic's slope towards 1/216 rather
than 1; ``penalty="sum"`` reproduces that, ``"mean"`` (default) is the definition above.

Both functions return every part, so a training loop can log them; the parts are graph
tensors (detach before logging).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from brainage.errors import InputError
from brainage.losses.regression import mse_loss

Network = Callable[[Tensor], Tensor]
PENALTIES = ("mean", "sum")


class GeneratorObjective(NamedTuple):
    """Generator loss and its parts (``total = adversarial + alpha*reconstruction + beta*task``).

    Attributes:
        total: The loss to minimise (scalar).
        adversarial: ``-mean D(G(x))``.
        reconstruction: ``mean |G(x) - x|``.
        task: ``MSE(R(G(x)), age)``; 0 when beta = 0.
        age_pred: ``R(G(x))`` ``(B,)``, or None when beta = 0.
    """

    total: Tensor
    adversarial: Tensor
    reconstruction: Tensor
    task: Tensor
    age_pred: Tensor | None


class CriticObjective(NamedTuple):
    """Critic loss and its parts (``total = wasserstein + gp_weight * gradient_penalty``).

    Attributes:
        total: The loss to minimise (scalar).
        wasserstein: ``mean D(G(x)) - mean D(x)`` (minus the critic's Wasserstein estimate).
        gradient_penalty: ``mean((||grad D(x_hat)||_2 - 1)^2)``.
    """

    total: Tensor
    wasserstein: Tensor
    gradient_penalty: Tensor


def generator_loss(critic: Network, fake: Tensor, real: Tensor, age: Tensor | None = None,
                   regressor: Network | None = None, alpha: float = 10.0, beta: float = 0.1
                   ) -> GeneratorObjective:
    """TGB-GAN generator objective.

    Gradients also reach the critic's weights; step only the generator's (and R's)
    optimiser with it.

    Args:
        critic: Maps images ``(B, C, D, H, W)`` to scores ``(B,)``.
        fake: Reconstructions ``G(x)`` ``(B, C, D, H, W)`` (with their graph).
        real: Inputs ``x``, same shape.
        age: True ages ``(B,)``; needed when ``beta > 0``.
        regressor: R, images -> ages ``(B,)``; needed when ``beta > 0``, unused when 0.
        alpha: Weight of the L1 reconstruction term (10).
        beta: Weight of the task term (0.1; 0 removes the task branch).

    Raises:
        BrainAgeError: shapes differ, a weight is negative, or beta > 0 without R or ages.
    """
    _check_pair(fake, real)
    _check_weights(alpha=alpha, beta=beta)
    adversarial = -critic(fake).mean()
    reconstruction = (fake - real).abs().mean()
    total = adversarial + alpha * reconstruction
    if beta == 0:
        return GeneratorObjective(total, adversarial, reconstruction, fake.new_zeros(()), None)
    if regressor is None or age is None:
        raise InputError(
            f"beta = {beta} weights the task-guided branch, but no "
            f"{'regressor' if regressor is None else 'age'} was given. Fix: pass both the "
            "regressor and the ages, or set beta=0 (the GAN without task branch)."
        )
    age_pred = regressor(fake)
    task = mse_loss(age_pred, age)
    return GeneratorObjective(total + beta * task, adversarial, reconstruction, task, age_pred)


def critic_loss(critic: Network, real: Tensor, fake: Tensor, gp_weight: float = 10.0,
                rng: torch.Generator | None = None, penalty: str = "mean") -> CriticObjective:
    """WGAN-GP critic objective; ``fake`` is detached (the critic step never updates G).

    Args:
        critic: Maps images to scores ``(B,)``; must treat samples independently (no batch
            norm), as the penalty differentiates the summed scores.
        real: Real images ``x`` ``(B, C, D, H, W)``.
        fake: Reconstructions ``G(x)``, same shape.
        gp_weight: lambda (10).
        rng: Generator for eps (on the images' device); None uses the global one.
        penalty: ``"mean"`` (the score's gradient) or ``"sum"`` (the published code's
            patch-map sum; the critic needs ``patch_map``).
    """
    _check_pair(fake, real)
    _check_weights(gp_weight=gp_weight)
    fake = fake.detach()
    wasserstein = critic(fake).mean() - critic(real).mean()
    gp = gradient_penalty(critic, real, fake, rng=rng, penalty=penalty)
    return CriticObjective(wasserstein + gp_weight * gp, wasserstein, gp)


def sample_eps(real: Tensor, rng: torch.Generator | None = None) -> Tensor:
    """eps ~ U(0, 1), one per sample, shaped ``(B, 1, 1, 1, 1)`` to broadcast over a volume."""
    shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    return torch.rand(shape, generator=rng, device=real.device, dtype=real.dtype)


def interpolate(real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """``x_hat = eps * fake + (1 - eps) * real`` (eps broadcast per sample)."""
    return eps * fake + (1.0 - eps) * real


def gradient_penalty(critic: Network, real: Tensor, fake: Tensor,
                     rng: torch.Generator | None = None, penalty: str = "mean") -> Tensor:
    """``mean_i (||grad_x D(x_hat_i)||_2 - 1)^2`` on random interpolates, differentiable.

    ``torch.autograd.grad(..., create_graph=True)`` keeps the penalty's graph, so its
    gradient reaches the critic's weights.
    """
    if penalty not in PENALTIES:
        raise InputError(f"unknown penalty {penalty!r}. Fix: use 'mean' (the score's "
                            "gradient) or 'sum' (the published code's patch-map sum).")
    _check_pair(fake, real)
    x_hat = interpolate(real.detach(), fake.detach(), sample_eps(real, rng)).requires_grad_(True)
    scores = critic(x_hat) if penalty == "mean" else _patch_sum(critic, x_hat)  # (B,)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(dim=1)  # (B, C, D, H, W) -> (B,)
    return ((norms - 1.0) ** 2).mean()


def _patch_sum(critic: Network, x: Tensor) -> Tensor:
    patch_map = getattr(critic, "patch_map", None)
    if patch_map is None:
        raise InputError("penalty='sum' needs a critic with patch_map (e.g. tgbgan_critic). "
                            "Fix: use penalty='mean'.")
    return patch_map(x).flatten(1).sum(dim=1)  # (B, 1, d, h, w) -> (B,)


def _check_pair(fake: Tensor, real: Tensor) -> None:
    if fake.shape != real.shape:
        raise InputError(
            f"generated images have shape {tuple(fake.shape)} but the real ones "
            f"{tuple(real.shape)}. Fix: the generator must reconstruct its input's shape "
            "(axes divisible by 2 ** depth)."
        )


def _check_weights(**weights: float) -> None:
    for name, value in weights.items():
        if not value >= 0:
            raise InputError(f"{name} must be >= 0, got {value!r}. Fix: pass a non-negative "
                                "weight (0 switches the term off).")
