"""The contrastive paper's encoders: published widths, feature sizes, heads, width knobs."""

from __future__ import annotations

import pytest
import torch

from brainage.models import count_parameters, create_model
from brainage.models.alexnet3d import alexnet3d_min_size


def _meta(name: str, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs)


@pytest.mark.parametrize(("name", "features", "millions"), [
    ("resnet18_3d", 512, 33.2), ("densenet121_3d", 1024, 11.2), ("alexnet3d", 128, 2.6),
])
def test_default_encoders(name: str, features: int, millions: float) -> None:
    model = _meta(name)
    assert model.num_features == features
    assert round(count_parameters(model) / 1e6, 1) == millions
    assert model.head.fc.in_features == features and model.head.fc.out_features == 1


def test_encoders_on_openbhb_size_on_meta() -> None:
    x = torch.empty(2, 1, 121, 145, 121, device="meta")
    for name in ("resnet18_3d", "densenet121_3d", "alexnet3d"):
        model = _meta(name)
        assert model.forward_features(x).shape == (2, model.num_features)


def test_width_knobs_shrink_models() -> None:
    assert _meta("resnet18_3d", width=8).num_features == 64
    dense = _meta("densenet121_3d", width=8, growth_rate=4, blocks=[1, 1])
    assert dense.num_features == (8 + 4) // 2 + 4
    assert _meta("alexnet3d", channels=[4, 4, 4, 4, 6]).num_features == 6


def test_alexnet_min_size_is_exact() -> None:
    n = alexnet3d_min_size()
    assert n == 33
    model = create_model("alexnet3d", channels=[2, 2, 2, 2, 2])
    model.eval()
    assert model(torch.randn(1, 1, n, n + 2, n + 1)).shape == (1,)


def test_reset_head_with_several_outputs() -> None:
    model = create_model("resnet18_3d", width=4, layers=[1, 1, 1, 1])
    model.reset_head(3)
    model.eval()
    assert model(torch.randn(2, 1, 20, 24, 16)).shape == (2, 3)
    assert model.num_outputs == 3


def test_densenet_memory_efficient_matches() -> None:
    kwargs = {"width": 4, "growth_rate": 2, "blocks": [2, 1], "bn_size": 2}
    plain = create_model("densenet121_3d", **kwargs)
    ckpt = create_model("densenet121_3d", memory_efficient=True, **kwargs)
    ckpt.load_state_dict(plain.state_dict())
    plain.eval(), ckpt.eval()
    x = torch.randn(2, 1, 20, 24, 16, requires_grad=True)
    torch.testing.assert_close(ckpt(x), plain(x))
