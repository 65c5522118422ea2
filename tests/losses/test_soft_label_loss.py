"""Age bins, Gaussian soft labels and the KL loss against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from brainage.errors import BrainAgeError
from brainage.losses import AgeBins, SoftLabelKLLoss, expected_age, soft_label_kl_loss, soft_labels


def _phi(z: float) -> float:
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


BINS = AgeBins(0.0, 4.0, 1.0)
OUTER, INNER = _phi(-1) - _phi(-2), _phi(0) - _phi(-1)  # 0.135905, 0.341345


def test_bins() -> None:
    paper = AgeBins.from_range((42, 82), 1)
    assert paper.num_bins == 40
    assert paper.centres()[[0, -1]].tolist() == [42.5, 81.5]
    assert AgeBins.from_range((0, 100), 2).num_bins == 50
    with pytest.raises(BrainAgeError, match="multiple of width"):
        AgeBins(0.0, 10.0, 3.0)


def test_soft_labels_by_hand() -> None:
    raw = soft_labels(torch.tensor([2.0]), BINS, sigma=1.0, normalise=False)
    torch.testing.assert_close(raw, torch.tensor([[OUTER, INNER, INNER, OUTER]]))
    norm = soft_labels(torch.tensor([2.0]), BINS, sigma=1.0)
    total = 2 * (OUTER + INNER)
    torch.testing.assert_close(norm, torch.tensor([[OUTER, INNER, INNER, OUTER]]) / total)


def test_paper_soft_label_peak() -> None:
    bins = AgeBins(42, 82, 1)
    labels = soft_labels(torch.tensor([60.5, 60.0]), bins, sigma=1.0, normalise=False)
    assert labels[0, 18].item() == pytest.approx(_phi(0.5) - _phi(-0.5))  # bin [60, 61)
    assert labels[1, 17].item() == pytest.approx(INNER)  # an edge splits the mass evenly
    assert labels[1, 18].item() == pytest.approx(INNER)


def test_hard_labels_and_range_edges() -> None:
    hard = soft_labels(torch.tensor([2.0, 0.0, 4.0]), BINS, sigma=0)
    assert hard.argmax(1).tolist() == [2, 0, 3]
    with pytest.raises(BrainAgeError, match="widen age_range"):
        soft_labels(torch.tensor([4.5]), BINS)


def test_kl_loss_by_hand() -> None:
    total = 2 * (OUTER + INNER)
    t = [OUTER / total, INNER / total, INNER / total, OUTER / total]
    expected = sum(p * math.log(p) for p in t) + math.log(4)  # KL(t || uniform)
    uniform = torch.full((2, 4), math.log(0.25))
    loss = soft_label_kl_loss(uniform, torch.tensor([2.0, 2.0]), BINS, sigma=1.0)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    module = SoftLabelKLLoss(age_range=(0, 4), bin_width=1, sigma=1.0)
    assert module(uniform, torch.tensor([2.0, 2.0])).item() == pytest.approx(expected, rel=1e-5)


def test_kl_loss_is_zero_at_the_target_and_has_gradients() -> None:
    target = soft_labels(torch.tensor([1.3]), BINS, sigma=0.7)
    assert soft_label_kl_loss(target.log(), torch.tensor([1.3]), BINS, 0.7).item() == \
        pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros(1, 4, requires_grad=True)
    soft_label_kl_loss(torch.log_softmax(logits, 1), torch.tensor([0.5]), BINS).backward()
    assert logits.grad[0, 0] < 0  # descent raises the logit of the true bin
    with pytest.raises(BrainAgeError, match=r"\(B, 4\)"):
        soft_label_kl_loss(torch.zeros(1, 5), torch.tensor([1.0]), BINS)


def test_expected_age() -> None:
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0]])
    assert expected_age(probs.log(), BINS).item() == pytest.approx(1.0)
