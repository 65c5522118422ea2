"""ScaleDense (TSAN stage 1) and the stage-2 residual model against the published spec."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from brainage.errors import BrainAgeError
from brainage.models import count_parameters, create_model, discretize_age
from brainage.models.scaledense import ACConv, SqueezeExcite, scaledense_sizes

FULL = (91, 109, 91)


def _meta(name: str, **kwargs):
    with torch.device("meta"):
        return create_model(name, **kwargs)


def test_full_scaledense_has_102_4_million_parameters() -> None:
    model = _meta("scaledense")
    assert round(count_parameters(model) / 1e6, 1) == 102.4
    assert round(count_parameters(model.trunk.blocks[-1]) / 1e6, 1) == 90.9
    assert model.num_features == 1944
    assert round(count_parameters(_meta("scaledense", use_sex=True)) / 1e6, 1) == 102.4


def test_full_scaledense_spatial_sizes_and_channels() -> None:
    assert scaledense_sizes(FULL) == [(81, 99, 81), (40, 49, 40), (20, 24, 20), (10, 12, 10),
                                      (5, 6, 5), (2, 3, 2)]
    model = _meta("scaledense")
    x = torch.empty(2, 1, *FULL, device="meta")
    assert model.trunk.stem(x).shape == (2, 8, 81, 99, 81)
    h, channels = model.trunk.stem(x), []
    for block in model.trunk.blocks:
        h = block(h)
        channels.append(h.shape[1])
    assert channels == [24, 72, 216, 648, 1944]
    assert tuple(h.shape[2:]) == (2, 3, 2)
    assert model(x).shape == (2,)


def test_stem_is_k7_p1_d2_with_elu() -> None:
    conv, act = _meta("scaledense").trunk.stem
    assert (conv.kernel_size, conv.padding, conv.dilation) == ((7,) * 3, (1,) * 3, (2,) * 3)
    assert isinstance(act, nn.ELU)


def test_ac_conv_is_four_bias_free_branches_with_norm() -> None:
    ac = ACConv(3, 5)
    kernels = [b[0].kernel_size for b in ac.branches]
    assert kernels == [(3, 3, 3), (1, 1, 3), (3, 1, 1), (1, 3, 1)]
    assert all(b[0].bias is None and isinstance(b[1], nn.BatchNorm3d) for b in ac.branches)
    x = torch.randn(2, 3, 6, 7, 5)
    assert ac(x).shape == (2, 5, 6, 7, 5)
    ac.eval()
    torch.testing.assert_close(ac(x), sum(b(x) for b in ac.branches))


def test_squeeze_excite_hidden_width_at_least_one() -> None:
    assert SqueezeExcite(8, 16).fc[0].out_features == 1
    assert SqueezeExcite(1296, 16).fc[0].out_features == 81


def test_head_layers_with_and_without_sex() -> None:
    plain, sexed = _meta("scaledense"), _meta("scaledense", use_sex=True)
    assert [m.out_features for m in plain.head.modules() if isinstance(m, nn.Linear)] == [
        32, 16, 1]
    assert [(m.in_features, m.out_features) for m in sexed.head.modules()
            if isinstance(m, nn.Linear)] == [(1944, 32), (2, 16), (16, 8), (40, 16), (16, 1)]
    assert plain.covariates == () and sexed.covariates == ("sex",)


def test_init_kaiming_xavier_and_norm_ones() -> None:
    model = create_model("scaledense", width=4, num_blocks=2)
    bn = next(m for m in model.modules() if isinstance(m, nn.BatchNorm3d))
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    conv = model.trunk.blocks[1].new[0].branches[0][0]  # 12 -> 24 channels, 3x3x3
    fan_in = conv.weight[0].numel()
    assert conv.weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)


def test_sex_model_uses_sex_and_checks_it() -> None:
    model = create_model("scaledense", width=2, num_blocks=2, use_sex=True, output_bias=50.0)
    model.eval()
    x = torch.randn(2, 1, 24, 28, 20)
    female, male = model(x, sex=torch.tensor([0, 0])), model(x, sex=torch.tensor([1, 1]))
    assert not torch.allclose(female, male)
    one_hot = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    torch.testing.assert_close(model(x, sex=one_hot), male)
    with pytest.raises(BrainAgeError, match="needs sex"):
        model(x)
    with pytest.raises(BrainAgeError, match="does not use sex"):
        create_model("scaledense", width=2, num_blocks=2)(x, sex=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="0 .female. or 1"):
        model(x, sex=torch.tensor([0, 2]))


def test_output_relu_and_output_bias() -> None:
    x = torch.randn(2, 1, 24, 28, 20)
    model = create_model("scaledense", width=2, num_blocks=2, output_bias=-1e3)
    assert torch.all(model(x) == 0)  # the published final ReLU clips
    free = create_model("scaledense", width=2, num_blocks=2, output_relu=False, output_bias=-1e3)
    assert torch.all(free(x) < 0)


def test_too_small_or_badly_shaped_input_is_explained() -> None:
    model = create_model("scaledense", width=2, num_blocks=2)
    with pytest.raises(BrainAgeError, match="at least"):
        model(torch.randn(2, 1, 13, 28, 20))
    with pytest.raises(ValueError, match=r"\(B, 1, D, H, W\)"):
        model(torch.randn(1, 24, 28, 20))


@pytest.mark.parametrize(("age", "expected"), [(62.5, 65.0), (57.4, 55.0), (57.5, 60.0),
                                               (62.49, 60.0), (0.0, 0.0), (2.5, 5.0)])
def test_discretize_rounds_halves_up(age: float, expected: float) -> None:
    assert discretize_age(torch.tensor([age])).item() == expected


def test_stage2_discretized_shape_and_final_age() -> None:
    model = create_model("tsan_stage2", width=2, num_blocks=2)
    model.eval()
    x, stage1 = torch.randn(3, 1, 24, 28, 20), torch.tensor([62.5, 57.4, 40.1])
    disc = model.discretized(stage1)
    assert disc.shape == (3, 1)
    assert disc.squeeze(1).tolist() == [65.0, 55.0, 40.0]
    residual = model.forward_residual(x, stage1)
    assert residual.shape == (3,)
    torch.testing.assert_close(model(x, stage1), residual + disc.squeeze(1))
    torch.testing.assert_close(model(x, stage1.reshape(3, 1)), model(x, stage1))
    age = torch.tensor([63.0, 50.0, 41.0])
    torch.testing.assert_close(model.residual_target(age, stage1), torch.tensor([-2.0, -5.0, 1.0]))


def test_stage2_head_layers_and_age_normalisation() -> None:
    model = _meta("tsan_stage2", use_sex=True)
    linears = [(m.in_features, m.out_features) for m in model.head.modules()
               if isinstance(m, nn.Linear)]
    assert linears == [(1944, 32), (1, 32), (32, 16), (2, 16), (16, 8), (56, 16), (16, 1)]
    raw = create_model("tsan_stage2", width=2, num_blocks=2)
    norm = create_model("tsan_stage2", width=2, num_blocks=2, normalise_age=True,
                        age_mean=60.0, age_sd=10.0)
    norm.load_state_dict(raw.state_dict())
    seen = {}
    for name, m in (("raw", raw), ("norm", norm)):
        m.head.age.register_forward_hook(lambda mod, inp, out, n=name: seen.update({n: inp[0]}))
        m.eval()
        m(torch.randn(2, 1, 24, 28, 20), torch.tensor([62.0, 71.0]))
    torch.testing.assert_close(seen["raw"], torch.tensor([[60.0], [70.0]]))
    torch.testing.assert_close(seen["norm"], torch.tensor([[0.0], [1.0]]))


def test_stage2_gradient_does_not_reach_stage1_age() -> None:
    model = create_model("tsan_stage2", width=2, num_blocks=2)
    stage1 = torch.tensor([50.0, 60.0], requires_grad=True)
    model(torch.randn(2, 1, 24, 28, 20), stage1).sum().backward()
    assert stage1.grad is None
