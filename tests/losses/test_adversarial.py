"""TGB-GAN objectives against hand computations on critics whose gradients are known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from brainage.errors import BrainAgeError
from brainage.losses.adversarial import (
    critic_loss,
    generator_loss,
    gradient_penalty,
    interpolate,
    sample_eps,
)
from brainage.models.tgbgan import PatchCritic

SHAPE = (3, 1, 4, 5, 2)


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b per sample, so grad_x D = w everywhere and ||grad|| = ||w||."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.b = nn.Parameter(torch.tensor(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b


def mean_critic(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


def quadratic_critic(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x.flatten(1).square().sum(1)  # grad_x D = x


def _rng(seed: int = 3) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gradient_penalty_of_a_linear_critic_is_known_analytically() -> None:
    torch.manual_seed(0)
    w = torch.randn(SHAPE[1:]) * 0.2
    critic = LinearCritic(w)
    real, fake = torch.rand(SHAPE), torch.rand(SHAPE)
    gp = gradient_penalty(critic, real, fake)
    norm = float(w.norm())
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-5)
    gp.backward()  # create_graph: d gp / d w = 2 (||w|| - 1) w / ||w||
    torch.testing.assert_close(critic.w.grad, 2 * (norm - 1.0) * w / norm)


def test_epsilon_is_per_sample_and_seeded() -> None:
    real, fake = torch.rand(SHAPE), torch.rand(SHAPE)
    eps = torch.rand(SHAPE[0], 1, 1, 1, 1, generator=_rng())
    x_hat = eps * fake + (1 - eps) * real
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.testing.assert_close(gradient_penalty(quadratic_critic, real, fake, rng=_rng()),
                               expected)
    assert sample_eps(real, _rng()).shape == (3, 1, 1, 1, 1)
    assert len(set(sample_eps(real, _rng()).flatten().tolist())) == 3
    torch.testing.assert_close(interpolate(real, fake, torch.ones(3, 1, 1, 1, 1)), fake)
    again = gradient_penalty(quadratic_critic, real, fake, rng=_rng())
    other = gradient_penalty(quadratic_critic, real, fake, rng=_rng(4))
    torch.testing.assert_close(again, expected)
    assert not torch.allclose(other, expected)


def test_critic_loss_signs_and_total() -> None:
    real, fake = torch.ones(SHAPE), torch.zeros(SHAPE)
    out = critic_loss(mean_critic, real, fake, gp_weight=10.0, rng=_rng())
    assert out.wasserstein.item() == pytest.approx(0.0 - 1.0)  # mean D(fake) - mean D(real)
    n = math.prod(SHAPE[1:])  # grad of the mean is 1/n per voxel: ||grad|| = 1/sqrt(n)
    assert out.gradient_penalty.item() == pytest.approx((1 / math.sqrt(n) - 1) ** 2)
    assert out.total.item() == pytest.approx(-1.0 + 10.0 * out.gradient_penalty.item())


def test_critic_step_does_not_reach_the_generator() -> None:
    gen_weight = nn.Parameter(torch.tensor(2.0))
    real = torch.rand(SHAPE)
    fake = real * gen_weight
    critic_loss(LinearCritic(torch.full(SHAPE[1:], 0.1)), real, fake).total.backward()
    assert gen_weight.grad is None


def test_generator_loss_parts_signs_and_weights() -> None:
    real, fake = torch.ones(SHAPE), torch.full(SHAPE, 0.25, requires_grad=True)
    age = torch.tensor([20.0, 22.0, 30.0])

    def regressor(x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), 24.0) + 0 * x.flatten(1).sum(1)

    out = generator_loss(mean_critic, fake, real, age, regressor, alpha=10.0, beta=0.1)
    assert out.adversarial.item() == pytest.approx(-0.25)  # -mean D(G(x))
    assert out.reconstruction.item() == pytest.approx(0.75)  # mean |G(x) - x|
    assert out.task.item() == pytest.approx((16 + 4 + 36) / 3)
    assert out.total.item() == pytest.approx(-0.25 + 10 * 0.75 + 0.1 * 56 / 3)
    assert out.age_pred.shape == (3,)
    out.total.backward()
    assert fake.grad is not None


def test_beta_zero_removes_the_regressor_term() -> None:
    real, fake = torch.ones(SHAPE), torch.full(SHAPE, 0.25)

    def never(x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("the regressor must not run when beta = 0")

    out = generator_loss(mean_critic, fake, real, torch.zeros(3), never, beta=0.0)
    assert out.task.item() == 0.0 and out.age_pred is None
    assert out.total.item() == pytest.approx(-0.25 + 10 * 0.75)
    assert generator_loss(mean_critic, fake, real, beta=0.0).total == out.total
    with pytest.raises(BrainAgeError, match="no regressor was given.*beta=0"):
        generator_loss(mean_critic, fake, real, torch.zeros(3))


def test_published_patch_sum_penalty_scales_the_gradient_by_the_patch_count() -> None:
    critic = PatchCritic(channels=(2, 2))  # 8 x 8 x 4 -> 2 x 2 x 1: 4 patches
    real, fake = torch.rand(2, 1, 8, 8, 4), torch.rand(2, 1, 8, 8, 4)
    x_hat = interpolate(real, fake, sample_eps(real, _rng())).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat)
    norms = grad.flatten(1).norm(dim=1)
    summed = gradient_penalty(critic, real, fake, rng=_rng(), penalty="sum")
    torch.testing.assert_close(summed, ((4 * norms - 1) ** 2).mean())
    with pytest.raises(BrainAgeError, match="needs a critic with patch_map"):
        gradient_penalty(mean_critic, real, fake, penalty="sum")
    with pytest.raises(BrainAgeError, match="unknown penalty"):
        gradient_penalty(critic, real, fake, penalty="max")


def test_bad_inputs_are_explained() -> None:
    with pytest.raises(BrainAgeError, match="shape \\(3, 1, 4, 5, 2\\) but the real ones"):
        generator_loss(mean_critic, torch.zeros(SHAPE), torch.zeros(3, 1, 4, 5, 4), beta=0)
    with pytest.raises(BrainAgeError, match="alpha must be >= 0"):
        generator_loss(mean_critic, torch.zeros(SHAPE), torch.zeros(SHAPE), alpha=-1, beta=0)
    with pytest.raises(BrainAgeError, match="gp_weight must be >= 0"):
        critic_loss(mean_critic, torch.zeros(SHAPE), torch.zeros(SHAPE), gp_weight=float("nan"))


def test_one_step_of_the_tiny_networks_reaches_every_parameter() -> None:
    from brainage.models import create_model, model_info

    torch.manual_seed(0)
    gen, critic, reg = (create_model(n, **model_info(n).tiny)
                        for n in ("tgbgan_generator", "tgbgan_critic", "vgg3d"))
    x, age = torch.rand(2, 1, 16, 24, 8), torch.tensor([21.0, 27.0])
    fake = gen(x)
    d_step = critic_loss(critic, x, fake, rng=_rng())
    d_step.total.backward()  # the penalty's double backward through conv + ReLU
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in critic.parameters())
    assert all(p.grad is None for p in gen.parameters())
    g_step = generator_loss(critic, fake, x, age, reg)
    g_step.total.backward()
    assert all(p.grad is not None for p in [*gen.parameters(), *reg.parameters()])
    assert torch.isfinite(torch.stack([g_step.total, d_step.total])).all()
