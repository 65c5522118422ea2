"""Kernelised contrastive losses: python-loop values, a dense (N, N, N) re-implementation,
gradients, invariances and the memory guard."""

from __future__ import annotations

import math

import pytest
import torch

from brainage.errors import BrainAgeError
from brainage.losses.contrastive import (
    METHODS,
    KernelSupConLoss,
    age_kernel,
    bin_ages,
    kernel_supcon_loss,
    loss_memory_bytes,
)

KERNEL_METHODS = ("yaware", "threshold_code", "threshold_paper", "exp")
KERNELS = ("rbf", "gaussian", "cauchy")


def _kernel(d: float, kernel: str, sigma: float) -> float:
    if kernel == "rbf":
        return math.exp(-d * d / (2 * sigma**2))
    if kernel == "gaussian":
        return math.exp(-d * d / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    return 1 / (sigma * d * d + 1)


def loop_loss(z: list[list[float]], ages: list[float], method: str, kernel: str = "rbf",
              sigma: float = 2.0, tau: float = 0.1, base: float = 0.07) -> float:
    """The loss written out with python loops, for N unit vectors `z` and their ages."""
    n = len(z)
    if method == "supcon":
        b = [math.ceil(a / 2.0) for a in ages]
        w = [[float(b[i] == b[j]) for j in range(n)] for i in range(n)]
    else:
        w = [[_kernel(ages[i] - ages[j], kernel, sigma) for j in range(n)] for i in range(n)]
    dot = [[sum(p * q for p, q in zip(z[i], z[j], strict=True)) for j in range(n)]
           for i in range(n)]
    lg = [[(dot[i][j] - max(dot[i])) / tau for j in range(n)] for i in range(n)]
    others = [[j for j in range(n) if j != i] for i in range(n)]
    losses = []
    for i in range(n):
        num = weight = 0.0
        for k in others[i]:
            if method in ("yaware", "supcon"):
                den = sum(math.exp(lg[i][j]) for j in others[i])
            elif method == "exp":
                den = sum(math.exp(lg[i][j] * (1 - w[i][j])) for j in others[i])
            elif method == "threshold_code":
                den = sum(math.exp(lg[i][j]) * sum(w[j][i] > w[j][c] for c in range(n))
                          for j in others[i])
            else:  # threshold_paper
                den = sum(math.exp(lg[i][j]) for j in others[i] if w[i][j] <= w[i][k])
            num += w[i][k] * (lg[i][k] - math.log(den))
            weight += w[i][k]
        losses.append(-(tau / base) * num / weight)
    return sum(losses) / n


def dense_loss(features: torch.Tensor, age: torch.Tensor, method: str, kernel: str = "rbf",
               sigma: float = 2.0, tau: float = 0.1, base: float = 0.07) -> torch.Tensor:
    """Independent dense form: threshold masks as explicit (N, N, N) comparison tensors."""
    b, v, _ = features.shape
    z = torch.nn.functional.normalize(torch.cat(torch.unbind(features, 1)), dim=1)  # (N, D)
    y = torch.cat([age] * v).double()
    n = b * v
    if method == "supcon":
        lab = torch.ceil(y / 2)
        w = (lab[:, None] == lab[None, :]).double()
    else:
        d = y[:, None] - y[None, :]
        w = torch.tensor([[_kernel(float(x), kernel, sigma) for x in row] for row in d],
                         dtype=torch.float64)
    w = w.to(z.dtype)
    lg = z @ z.T / tau
    lg = lg - lg.max(1, keepdim=True).values
    off = 1 - torch.eye(n, dtype=z.dtype)
    e = torch.exp(lg) * off  # (N, N)
    if method in ("yaware", "supcon"):
        log_den = torch.log(e.sum(1, keepdim=True))
    elif method == "exp":
        log_den = torch.log((torch.exp(lg * (1 - w)) * off).sum(1, keepdim=True))
    elif method == "threshold_code":
        gt = (w.T[:, :, None] > w[None, :, :]).to(z.dtype)  # [i, j, c] = w_ji > w_jc
        log_den = torch.log((e * gt.sum(2)).sum(1, keepdim=True))
    else:
        le = (w[:, None, :] <= w[:, :, None]).to(z.dtype)  # [i, k, j] = w_ij <= w_ik
        log_den = torch.log((le * e[:, None, :]).sum(2))  # (N, N)
    pos = w * off
    log_p = (pos * (lg - log_den)).sum(1) / pos.sum(1)
    return -(tau / base) * log_p.mean()


def _unit(angles: list[float]) -> list[float]:
    return [math.cos(angles[0]) * math.cos(angles[1]), math.sin(angles[0]) * math.cos(angles[1]),
            math.sin(angles[1])]


#: 3 subjects x 2 views on the unit sphere, ages 30, 32 and 50 (a tie-free small example).
HAND_ANGLES = [[(0.0, 0.1), (0.3, 0.0)], [(1.0, -0.2), (1.2, 0.1)], [(2.5, 0.4), (2.0, 0.3)]]
HAND_AGES = [30.0, 32.0, 50.0]
#: The authors' KernelizedSupCon (EIDOSLAB/contrastive-brain-age-prediction, src/losses.py,
#: commit 2fe9e7b; temperature 0.1, base 0.07, rbf sigma 2, delta_reduction 'sum'), run by
#: once on exactly this float64 input, gave: yaware 2.139760, threshold 4.032735,
#: expw 3.416647, and supcon on its bin_age labels 0.144205. These are asserted below (on
#: random inputs the two agreed to 1e-15 for every method and kernel).
REFERENCE = {"yaware": 2.139760, "threshold_code": 4.032735, "exp": 3.416647,
             "supcon": 0.144205}


def hand_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    feats = torch.tensor([[_unit(list(a)) for a in views] for views in HAND_ANGLES],
                         dtype=torch.float64)  # (3, 2, 3)
    return feats, torch.tensor(HAND_AGES, dtype=torch.float64)


@pytest.mark.parametrize("method", METHODS)
def test_hand_example_matches_python_loops(method: str) -> None:
    feats, age = hand_inputs()
    z = [feats[b, v].tolist() for v in range(2) for b in range(3)]  # view-major
    expected = loop_loss(z, HAND_AGES * 2, method)
    got = kernel_supcon_loss(feats, age, method=method, kernel="rbf", sigma=2.0).item()
    assert got == pytest.approx(expected, rel=1e-10)
    if method in REFERENCE:
        assert got == pytest.approx(REFERENCE[method], abs=2e-6)


def test_one_subject_two_views_closed_form() -> None:
    """The other view is the only positive and the only sample to repel: p = 1, loss 0;
    exp's denominator is exp(l·(1 − 1)) = 1, so its loss is −(τ/τ_base)·l = (1 − cos)/τ_base."""
    feats = torch.nn.functional.normalize(torch.randn(1, 2, 4, dtype=torch.float64), dim=2)
    cos = float(feats[0, 0] @ feats[0, 1])
    for method in METHODS:
        expected = (1 - cos) / 0.07 if method == "exp" else 0.0
        got = kernel_supcon_loss(feats, torch.tensor([40.0]), method).item()
        assert got == pytest.approx(expected, abs=1e-12)


def random_inputs(b: int = 7, v: int = 2, d: int = 6, seed: int = 0,
                  dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(b, v, d, generator=g, dtype=dtype)
    age = torch.randint(20, 30, (b,), generator=g).to(dtype)  # ties on purpose
    return feats, age


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("method", KERNEL_METHODS)
@pytest.mark.parametrize("views", [2, 3])
def test_matches_dense_reimplementation(method: str, kernel: str, views: int) -> None:
    for seed in range(3):
        feats, age = random_inputs(v=views, seed=seed)
        expected = dense_loss(feats, age, method, kernel, sigma=1.5)
        got = kernel_supcon_loss(feats, age, method, kernel, sigma=1.5)
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_supcon_matches_dense_and_bins() -> None:
    feats, age = random_inputs(b=9, seed=4)
    torch.testing.assert_close(kernel_supcon_loss(feats, age, "supcon"),
                               dense_loss(feats, age, "supcon"))
    assert bin_ages(torch.tensor([3.0, 4.0, 4.1, 89.9, 90.0])).tolist() == [2, 2, 3, 45, 45]


@pytest.mark.parametrize("method", METHODS)
def test_gradients_are_finite(method: str) -> None:
    feats, age = random_inputs(b=8, dtype=torch.float32, seed=1)
    feats.requires_grad_(True)
    loss = KernelSupConLoss(method=method, kernel="rbf", sigma=0.5)(feats, age * 3)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()
    assert feats.grad.abs().sum() > 0


@pytest.mark.parametrize("method", METHODS)
def test_degenerate_batches_stay_finite(method: str) -> None:
    """Equal ages (nothing to repel for threshold_code), identical features, one view."""
    for feats, age in ((torch.randn(4, 2, 5), torch.full((4,), 50.0)),
                       (torch.ones(4, 2, 5), torch.tensor([20.0, 30.0, 40.0, 80.0])),
                       (torch.randn(4, 1, 5), torch.tensor([20.0, 30.0, 40.0, 80.0]))):
        feats.requires_grad_(True)
        loss = kernel_supcon_loss(feats, age, method, sigma=0.1)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(feats.grad).all()


@pytest.mark.parametrize("method", METHODS)
def test_invariances(method: str) -> None:
    feats, age = random_inputs(b=8, v=3, seed=2)
    loss = kernel_supcon_loss(feats, age, method)
    perm = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(kernel_supcon_loss(feats[perm], age[perm], method), loss)
    torch.testing.assert_close(kernel_supcon_loss(feats[:, [2, 0, 1]], age, method), loss)
    torch.testing.assert_close(kernel_supcon_loss(feats * 7.0, age, method), loss)
    half = kernel_supcon_loss(feats, age, method, base_temperature=0.14)
    torch.testing.assert_close(half, loss / 2)
    if method != "supcon":  # kernels see only age differences; bins do not
        torch.testing.assert_close(kernel_supcon_loss(feats, age + 13.0, method), loss)


@pytest.mark.parametrize("method", METHODS)
def test_features_that_follow_age_score_lower_than_shuffled(method: str) -> None:
    age = 20.0 + 5.0 * (torch.arange(12, dtype=torch.float64) // 2)  # pairs share an age
    angle = (age - 20) / 25 * math.pi  # nearby ages, nearby directions
    z = torch.stack([torch.cos(angle), torch.sin(angle), 0.2 * torch.ones_like(angle)], 1)
    feats = torch.stack([z, z], dim=1)  # (12, 2, 3): identical views
    aligned = kernel_supcon_loss(feats, age, method)
    g = torch.Generator().manual_seed(3)
    for _ in range(5):
        shuffled = kernel_supcon_loss(feats[torch.randperm(12, generator=g)], age, method)
        assert aligned < shuffled


def test_memory_limit() -> None:
    feats, age = random_inputs(b=8, dtype=torch.float32)
    need = loss_memory_bytes(16, "threshold_paper")
    assert need > loss_memory_bytes(16, "yaware") > 0
    assert loss_memory_bytes(32, "exp") == 4 * loss_memory_bytes(16, "exp")
    with pytest.raises(BrainAgeError, match=r"N = 16 .*memory_limit"):
        kernel_supcon_loss(feats, age, "threshold_paper", memory_limit=need - 1)
    kernel_supcon_loss(feats, age, "threshold_paper", memory_limit=need)
    kernel_supcon_loss(feats, age, "threshold_paper", memory_limit=None)
    with pytest.raises(BrainAgeError, match="smaller batch"):
        KernelSupConLoss("threshold_code", memory_limit=1000)(feats, age)


def test_bad_inputs_are_refused_clearly() -> None:
    feats, age = random_inputs()
    with pytest.raises(BrainAgeError, match=r"\(B, V, D\)"):
        kernel_supcon_loss(feats[:, 0], age)
    with pytest.raises(BrainAgeError, match="one age per subject"):
        kernel_supcon_loss(feats, age.repeat(2))
    with pytest.raises(BrainAgeError, match="Did you mean 'threshold_code'"):
        KernelSupConLoss("threshold_cod")
    with pytest.raises(BrainAgeError, match="unknown kernel"):
        KernelSupConLoss(kernel="laplace")
    with pytest.raises(BrainAgeError, match="sigma"):
        age_kernel(age, "rbf", 0.0)
    with pytest.raises(BrainAgeError, match="temperature"):
        kernel_supcon_loss(feats, age, temperature=0.0)


def test_low_precision_features_are_computed_in_float32() -> None:
    feats, age = random_inputs(b=6, dtype=torch.float32, seed=5)
    expected = kernel_supcon_loss(feats.bfloat16().float(), age, "threshold_paper")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = kernel_supcon_loss(feats.bfloat16(), age, "threshold_paper")
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
