"""SFCN: published layout, bins, expected-age output and log-probabilities for the KL loss."""

from __future__ import annotations

import torch
from torch import nn

from brainage.models import count_parameters, create_model


def test_paper_configuration_layout() -> None:
    with torch.device("meta"):
        model = create_model("sfcn", age_range=[42, 82], bin_width=1)
    assert model.age_bins.num_bins == 40
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv3d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 256, 64]
    assert [c.kernel_size[0] for c in convs] == [3, 3, 3, 3, 3, 1]
    pools = [isinstance(b.pool, nn.MaxPool3d) for b in model.features]
    assert pools == [True] * 5 + [False]
    assert model.drop.p == 0.5
    assert round(count_parameters(model) / 1e6, 2) == 2.95


def test_block_order_is_conv_norm_pool_act() -> None:
    block = create_model("sfcn").features[0]
    assert [name for name, _ in block.named_children()] == ["conv", "norm", "pool", "act"]


def test_default_bins_and_expected_age() -> None:
    model = create_model("sfcn", channels=[4, 8, 8, 4])
    assert model.age_bins.num_bins == 50
    assert model.bin_centres[:2].tolist() == [1.0, 3.0]
    model.eval()
    x = torch.randn(2, 1, 24, 28, 20)
    log_probs = model.forward_logits(x)
    assert log_probs.shape == (2, 50)
    torch.testing.assert_close(log_probs.exp().sum(1), torch.ones(2))
    expected = (log_probs.exp() * model.bin_centres).sum(1)
    torch.testing.assert_close(model(x), expected)


def test_expected_age_of_a_peaked_distribution_is_its_centre() -> None:
    model = create_model("sfcn", channels=[4, 4], age_range=[42, 82], bin_width=1)
    log_probs = torch.full((1, 40), -1e4)
    log_probs[0, 10] = 0.0
    assert model.expected_age(log_probs).item() == 52.5


def test_any_input_size_via_adaptive_pool() -> None:
    model = create_model("sfcn", channels=[2, 2, 2])
    model.eval()
    for shape in [(4, 5, 6), (9, 13, 7)]:
        assert model(torch.randn(1, 1, *shape)).shape == (1,)
