"""TGB-GAN networks: published sizes (on the meta device), shapes, errors, init, VGG3D parts."""

from __future__ import annotations

import pytest
import torch

from brainage.errors import BrainAgeError
from brainage.models import check_kind, count_parameters, create_model, list_models, model_info
from brainage.models.tgbgan import PatchCritic, TGBGenerator
from brainage.models.vgg3d import VGG3D, match_channels

#: Exact counts at the published settings, and the spec's rounded sizes (Li et al. 2021).
PUBLISHED = {"tgbgan_generator": (18_196_352, 18.0e6), "tgbgan_critic": (4_661_376, 4.7e6),
             "vgg3d": (18_773_265, None)}


def _meta(name: str, **kwargs: object) -> torch.nn.Module:
    with torch.device("meta"):  # no weights allocated, no compute: shapes only
        return create_model(name, **kwargs)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_at_published_sizes(name: str) -> None:
    exact, spec = PUBLISHED[name]
    n = count_parameters(_meta(name))
    assert n == exact
    if spec is not None:
        assert abs(n - spec) / spec < 0.05


def test_paper_sizes_map_96_cubed_back_to_96_cubed() -> None:
    x = torch.empty(2, 1, 96, 96, 96, device="meta")
    gen, critic, reg = _meta("tgbgan_generator"), _meta("tgbgan_critic"), _meta("vgg3d")
    z = gen.encode(x)
    assert z.shape == (2, 512, 3, 3, 3) and z[0].numel() == 13_824
    assert gen.decode(z).shape == x.shape
    assert critic.patch_map(x).shape == (2, 1, 6, 6, 6)
    assert critic(x).shape == (2,)
    assert reg.blocks(x).shape == (2, 256, 3, 3, 3)  # = feature_grid: the pooling is a no-op
    assert reg.dense[0].in_features == 6912
    assert reg.forward_features(x).shape == (2, 64) and reg(x).shape == (2,)


def _gen(encoder: tuple[int, ...], decoder: tuple[int, ...], **kwargs: object) -> TGBGenerator:
    return TGBGenerator(encoder_channels=encoder, decoder_channels=decoder, **kwargs)


@pytest.mark.parametrize("shape", [(4, 12, 8), (8, 4, 16)])
def test_generator_other_depths_and_unequal_sizes(shape: tuple[int, int, int]) -> None:
    gen = _gen((3, 5), (4, 2))
    assert gen.size_multiple == 4
    x = torch.rand(2, 1, *shape)
    assert gen.encode(x).shape == (2, 5, *(s // 4 for s in shape))
    assert gen(x).shape == x.shape


def test_generator_output_is_nonnegative_unless_asked() -> None:
    x = torch.rand(2, 1, 8, 16, 8)
    assert (_gen((4, 4), (4, 4))(x) >= 0).all()
    assert (_gen((4, 4), (4, 4), output_relu=False)(x) < 0).any()


@pytest.mark.parametrize("seed", range(5))
def test_init_does_not_start_with_a_dead_output(seed: int) -> None:
    torch.manual_seed(seed)  # with PyTorch's default init about half of the seeds gave all 0
    gen = create_model("tgbgan_generator", **model_info("tgbgan_generator").tiny)
    out = gen(torch.rand(1, 1, 16, 24, 8))
    assert (out > 0).float().mean() > 0.05
    assert all(not m.bias.any() for m in gen.modules()
               if isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d) and m.bias is not None)


def test_generator_errors_name_value_and_fix() -> None:
    gen = _gen((4, 4, 4), (4, 4, 4))
    with pytest.raises(BrainAgeError, match=r"axes \[20\] that are not multiples of 8.*Fix"):
        gen(torch.rand(1, 1, 16, 20, 8))
    with pytest.raises(ValueError, match=r"shape \(B, 1, D, H, W\), got \(16, 16, 16\)"):
        gen.encode(torch.rand(16, 16, 16))
    with pytest.raises(ValueError, match="decoder input must have shape \\(B, 4"):
        gen.decode(torch.rand(1, 3, 2, 2, 2))
    with pytest.raises(BrainAgeError, match="decoder_channels has 2 stages but encoder_channels"):
        _gen((4, 4, 4), (4, 4))
    with pytest.raises(BrainAgeError, match="encoder_channels"):
        create_model("tgbgan_generator", encoder_channels=[])
    with pytest.raises(BrainAgeError, match="unknown act"):
        PatchCritic(act="tanhh")


def test_critic_patch_map_and_score() -> None:
    critic = PatchCritic(channels=(4, 8, 8))
    x = torch.rand(2, 1, 20, 28, 24)
    patches = critic.patch_map(x)
    assert patches.shape == (2, 1, 3, 4, 3)  # ceil(n / 8) per axis
    torch.testing.assert_close(critic(x), patches.mean(dim=(1, 2, 3, 4)))
    torch.testing.assert_close(critic(x[1:]), critic(x)[1:])  # samples are independent


def test_match_channels_pads_with_zeros_or_cuts() -> None:
    x = torch.randn(2, 3, 4, 5, 6)
    padded = match_channels(x, 5)
    assert padded.shape == (2, 5, 4, 5, 6)
    torch.testing.assert_close(padded[:, :3], x)
    assert (padded[:, 3:] == 0).all()
    torch.testing.assert_close(match_channels(x, 2), x[:, :2])


def test_vgg3d_residual_grid_and_dense_options() -> None:
    model = VGG3D(channels=(2, 4), dense=(), feature_grid=(2, 3, 1), dropout=0.0).eval()
    assert model.num_features == 4 * 2 * 3 * 1  # no dense layers: the flattened map
    x = torch.randn(2, 1, 8, 12, 4)  # conv map (2, 3, 1) = feature_grid
    conv_map = model.blocks(model.prepare_input(x))
    torch.testing.assert_close(model.grid_pool(conv_map), conv_map)
    plain = VGG3D(channels=(2, 4), dense=(), feature_grid=(2, 3, 1), residual=False).eval()
    plain.load_state_dict(model.state_dict())  # the residual has no parameters
    with torch.no_grad():
        assert not torch.allclose(plain(x), model(x))
    with pytest.raises(BrainAgeError, match="feature_grid must be"):
        VGG3D(feature_grid=(3, 3))


def test_kinds_in_the_registry() -> None:
    assert list_models(kind="generator") == ["tgbgan_generator"]
    assert list_models(kind="critic") == ["tgbgan_critic"]
    assert "vgg3d" in list_models() and "tgbgan_critic" not in list_models()
    assert {"tgbgan_generator", "tgbgan_critic", "vgg3d"} <= set(list_models(kind=None))
    assert list_models("tgbgan_*", kind=None) == ["tgbgan_critic", "tgbgan_generator"]
    assert model_info("tgbgan_generator").kind == "generator"
    assert check_kind("vgg3d", "age").kind == "age"
    with pytest.raises(BrainAgeError, match="'tgbgan_critic' is a critic network.*tgbgan_generator"):
        check_kind("tgbgan_critic", "generator")
    with pytest.raises(BrainAgeError, match="unknown model kind 'gan'"):
        list_models(kind="gan")
    with pytest.raises(BrainAgeError, match="Did you mean 'tgbgan_critic'"):
        model_info("tgbgan_critik")
