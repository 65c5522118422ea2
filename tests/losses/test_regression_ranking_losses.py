"""Regression and TSAN ranking losses against small hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import rankdata

from brainage.errors import BrainAgeError
from brainage.losses import (
    TSANLoss,
    age_difference_loss,
    average_ranks,
    l1_loss,
    mse_loss,
    random_pairs,
    soft_ranks,
    spearman_loss,
    tsan_loss,
)

PRED = torch.tensor([10.0, 20.0, 40.0])
TRUE = torch.tensor([12.0, 18.0, 40.0])
PAIRS = (torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0]))


def test_mse_and_l1() -> None:
    pred, target = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 5.0])
    assert mse_loss(pred, target).item() == pytest.approx(5 / 3)
    assert l1_loss(pred, target).item() == pytest.approx(1.0)


def test_shape_mismatch_is_refused_not_broadcast() -> None:
    with pytest.raises(ValueError, match=r"\(B, B\)"):
        mse_loss(torch.zeros(4), torch.zeros(4, 1))


def test_age_difference_loss_by_hand() -> None:
    # pred diffs (-10, -20, 30), true diffs (-6, -22, 28): errors (-4, 2, 2) -> (16 + 4 + 4) / 3
    assert age_difference_loss(PRED, TRUE, pairs=PAIRS).item() == pytest.approx(8.0)


def test_random_pairs_are_seeded_and_any_batch_size_works() -> None:
    a = random_pairs(5, generator=torch.Generator().manual_seed(3))
    b = random_pairs(5, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (5,) and int(a[0].max()) < 5
    assert age_difference_loss(torch.tensor([3.0]), torch.tensor([7.0])).item() == 0.0


def test_average_ranks_match_scipy() -> None:
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0, 4.0])
    assert average_ranks(x).tolist() == rankdata(x.numpy()).tolist()


def test_soft_ranks_by_hand() -> None:
    # sigmoid(ln 3) = 0.75: ranks 1 + 0.25 and 1 + 0.75
    ranks = soft_ranks(torch.tensor([0.0, math.log(3.0)]), temperature=1.0)
    torch.testing.assert_close(ranks, torch.tensor([1.25, 1.75]))
    torch.testing.assert_close(soft_ranks(torch.tensor([2.0, 2.0])), torch.tensor([1.5, 1.5]))


def test_spearman_loss_by_hand() -> None:
    # true ranks (1, 2) -> (N - r)/N = (0.5, 0); soft (1.25, 1.75) -> (0.375, 0.125)
    loss = spearman_loss(torch.tensor([0.0, math.log(3.0)]), torch.tensor([1.0, 2.0]))
    assert loss.item() == pytest.approx(0.125**2)


def test_spearman_loss_perfect_tied_reversed_and_single() -> None:
    ages = torch.tensor([25.0, 71.0, 40.0, 58.0, 33.0])
    assert spearman_loss(ages + 3.0, ages).item() < 1e-6
    assert spearman_loss(torch.tensor([50.0, 50.0]), torch.tensor([30.0, 30.0])).item() == 0.0
    assert spearman_loss(-ages, ages).item() > 0.1
    assert spearman_loss(torch.tensor([50.0]), torch.tensor([30.0])).item() == 0.0


def test_spearman_gradient_pushes_towards_correct_order() -> None:
    pred = torch.tensor([41.0, 40.0], requires_grad=True)  # wrong order, close together
    spearman_loss(pred, torch.tensor([30.0, 60.0])).backward()
    assert pred.grad[0] > 0 and pred.grad[1] < 0  # descent lowers pred 0, raises pred 1


def test_tsan_loss_combines_terms() -> None:
    terms = tsan_loss(PRED, TRUE, lam=10.0, beta=1.0, pairs=PAIRS)
    assert terms["main"].item() == pytest.approx(8 / 3)
    assert terms["diff"].item() == pytest.approx(8.0)
    assert terms["spearman"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["loss"].item() == pytest.approx(8 / 3 + 10 * (0 + 8.0), abs=1e-4)
    half = tsan_loss(PRED, TRUE, lam=2.0, beta=0.5, main="l1", pairs=PAIRS)
    assert half["loss"].item() == pytest.approx(4 / 3 + 2 * 0.5 * 8.0, abs=1e-4)


def test_tsan_loss_module_is_seeded() -> None:
    x, y = torch.randn(8) * 10 + 50, torch.randn(8) * 10 + 50
    a, b = TSANLoss(seed=1)(x, y), TSANLoss(seed=1)(x, y)
    assert a["loss"].item() == b["loss"].item()
    with pytest.raises(BrainAgeError, match="unknown regression loss"):
        TSANLoss(main="huber")
