"""One contract over every registered model, on its tiny variant.

Age models share the BrainAgeModel contract; generators and critics (kinds ``"generator"``
and ``"critic"``) have their own: a generator returns a volume of its input's shape, a
critic one score per sample. All of them save and load to the same output.
"""

from __future__ import annotations

import pytest
import torch
from model_testing import BASE_SHAPE, example_covariates, input_shape

from brainage.models import create_model, list_models, load_model, model_info, save_model

BATCH = 3


@pytest.fixture(params=list_models())
def tiny(request: pytest.FixtureRequest) -> torch.nn.Module:
    name = request.param
    return create_model(name, **model_info(name).tiny)


def _batch(model: torch.nn.Module) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    shape = input_shape(model)
    assert len(set(shape)) == 3, "test volumes must have unequal axes"
    return torch.randn(BATCH, 1, *shape), example_covariates(model, BATCH)


def test_registry_has_the_supervised_models() -> None:
    expected = {"scaledense", "tsan_stage2", "sfcn", "resnet18_3d", "densenet121_3d", "alexnet3d",
                "vgg3d"}
    assert expected <= set(list_models())


def test_every_name_has_exactly_one_kind() -> None:
    kinds = [list_models(kind=k) for k in ("age", "generator", "critic")]
    assert sorted(n for names in kinds for n in names) == list_models(kind=None)
    assert kinds[1] and kinds[2]


def test_output_shape_finite_and_gradients_reach_every_parameter(tiny) -> None:
    x, cov = _batch(tiny)
    out = tiny(x, **cov)
    assert out.shape == (BATCH,)
    assert torch.isfinite(out).all()
    out.sum().backward()
    no_grad = [n for n, p in tiny.named_parameters() if p.grad is None]
    assert no_grad == [], f"parameters outside the graph: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in tiny.parameters())
    first = next(tiny.parameters())  # the input layer: gradient flows end to end
    assert first.grad.abs().sum() > 0


def test_features_then_head_equals_forward(tiny) -> None:
    tiny.eval()
    x, cov = _batch(tiny)
    feats = tiny.forward_features(x)
    assert feats.shape == (BATCH, tiny.num_features)
    torch.testing.assert_close(tiny.forward_head(feats, **cov), tiny(x, **cov))


def test_save_load_gives_identical_output(tiny, tmp_path) -> None:
    x, cov = _batch(tiny)
    tiny.train()
    tiny(x, **cov)  # move the norm running statistics away from their init
    tiny.eval()
    with torch.no_grad():
        before = tiny(x, **cov)
    save_model(tiny, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json",
                                                                  "weights.safetensors"]
    loaded = load_model(tmp_path / "m")
    assert loaded.config == tiny.config
    with torch.no_grad():
        torch.testing.assert_close(loaded(x, **cov), before, rtol=0, atol=0)


def test_reset_head_keeps_interface(tiny) -> None:
    tiny.reset_head(1)
    tiny.eval()
    x, cov = _batch(tiny)
    assert tiny(x, **cov).shape == (BATCH,)


def test_config_rebuilds_same_architecture(tiny) -> None:
    again = create_model(tiny.config["name"], **tiny.config["kwargs"])
    assert [(n, p.shape) for n, p in again.named_parameters()] == [
        (n, p.shape) for n, p in tiny.named_parameters()
    ]


@pytest.mark.parametrize("name", list_models())
def test_input_pool_equals_pooling_the_image_first(name: str) -> None:
    pooled = create_model(name, **model_info(name).tiny, input_pool=2).eval()
    plain = create_model(name, **model_info(name).tiny).eval()
    plain.load_state_dict(pooled.state_dict())  # pooling adds no parameters
    x, cov = _batch(plain)
    big = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")  # pools back to x
    with torch.no_grad():
        torch.testing.assert_close(pooled(big, **cov), plain(x, **cov))
    assert pooled.config["kwargs"]["input_pool"] == 2


def test_input_pool_checks_size_and_value() -> None:
    from brainage.errors import BrainAgeError

    model = create_model("sfcn", **model_info("sfcn").tiny, input_pool=2)
    need = model.min_input_shape[0] * 2
    with pytest.raises(BrainAgeError, match=f"needs at least \\({need}"):
        model(torch.zeros(1, 1, need - 1, need, need))
    with pytest.raises(BrainAgeError, match="input_pool must be a positive integer"):
        create_model("sfcn", input_pool=0)


# --- generators and critics -----------------------------------------------------------------

def _tiny_of(name: str) -> torch.nn.Module:
    return create_model(name, **model_info(name).tiny)


def _generator_input(model: torch.nn.Module) -> torch.Tensor:
    m = model.size_multiple
    return torch.rand(BATCH, model.in_channels, 2 * m, 3 * m, m)  # unequal axes, divisible


def _critic_input(model: torch.nn.Module) -> torch.Tensor:
    return torch.rand(BATCH, model.in_channels, *BASE_SHAPE)


def _check_gradients(model: torch.nn.Module) -> None:
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert no_grad == [], f"parameters outside the graph: {no_grad}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert next(model.parameters()).grad.abs().sum() > 0


@pytest.mark.parametrize("name", list_models(kind="generator"))
def test_generator_contract(name: str, tmp_path) -> None:
    model = _tiny_of(name)
    x = _generator_input(model)
    out = model(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    z = model.encode(x)
    assert z.shape == (BATCH, *model.latent_shape(x.shape[2:]))
    torch.testing.assert_close(model.decode(z), out)
    out.sum().backward()
    _check_gradients(model)
    _check_save_load(model, x, tmp_path)


@pytest.mark.parametrize("name", list_models(kind="critic"))
def test_critic_contract(name: str, tmp_path) -> None:
    model = _tiny_of(name)
    x = _critic_input(model)
    score = model(x)
    assert score.shape == (BATCH,)
    assert torch.isfinite(score).all()
    score.sum().backward()
    _check_gradients(model)
    _check_save_load(model, x, tmp_path)


def _check_save_load(model: torch.nn.Module, x: torch.Tensor, tmp_path) -> None:
    model.eval()
    with torch.no_grad():
        before = model(x)
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.config == model.config
    assert type(loaded) is type(model)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), before, rtol=0, atol=0)
