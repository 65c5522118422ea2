"""Decoding plans and age-change maps with stand-in decoders whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from brainage.errors import BrainAgeError
from brainage.models import create_model, model_info
from brainage.synthesis import (
    age_change_map,
    decode_children,
    encode_subjects,
    latent_path,
    mass_fraction,
    mix_latents,
    path_change,
    plan_synthesis,
)


def upsample(z: torch.Tensor) -> torch.Tensor:
    """A linear stand-in decoder: (B, 1, 2, 3, 2) latents -> (B, 1, 4, 6, 4) images."""
    return torch.nn.functional.interpolate(z, scale_factor=2, mode="nearest")


LATENT = (1, 2, 3, 2)


def test_mixed_latents_follow_the_plan() -> None:
    latents = {"a": torch.zeros(LATENT), "b": torch.ones(LATENT), "c": torch.full(LATENT, 3.0)}
    plan = plan_synthesis(["a", "b", "c"], [20.0, 20.2, 19.9], cap=5, seed=2)
    mixed = mix_latents(plan, latents)
    assert mixed.shape == (2, *LATENT)  # n = 3, cap 5: two children
    for child, z in zip(plan.children, mixed, strict=True):
        p, q = child.parents
        expected = child.weight * latents[p] + (1 - child.weight) * latents[q]
        torch.testing.assert_close(z, expected)
    with pytest.raises(BrainAgeError, match="no latent for 1 subject\\(s\\): c"):
        mix_latents(plan, {"a": latents["a"], "b": latents["b"]})


def test_decode_children_with_the_tiny_generator() -> None:
    gen = create_model("tgbgan_generator", **model_info("tgbgan_generator").tiny).eval()
    images = [(f"s{i}", torch.rand(1, 8, 16, 24)) for i in range(3)]
    latents = encode_subjects(gen.encode, images)
    assert latents["s0"].shape == gen.latent_shape((8, 16, 24))
    plan = plan_synthesis([s for s, _ in images], [30.0, 30.1, 29.8], cap=6)
    out = list(decode_children(gen.decode, plan, latents, batch_size=2))
    assert [c for c, _ in out] == list(plan.children)
    assert all(v.shape == (8, 16, 24) and v.dtype == np.float32 for _, v in out)
    with torch.no_grad():
        first = gen.decode(mix_latents(plan.children[:1], latents))[0, 0].numpy()
    np.testing.assert_allclose(out[0][1], first, rtol=1e-5, atol=1e-6)


def test_latent_path_and_path_change() -> None:
    path = latent_path(torch.zeros(2), torch.tensor([1.0, -2.0]), steps=5)
    torch.testing.assert_close(path[:, 0], torch.linspace(0, 1, 5))
    frames = np.array([[0.0, 0.0], [1.0, 0.5], [0.0, 1.0]])  # voxel 0 goes up and back
    np.testing.assert_allclose(path_change(frames), [2.0, 1.0])
    np.testing.assert_allclose(path_change(frames, signed=True), [0.0, 1.0])
    with pytest.raises(BrainAgeError, match="steps must be >= 2"):
        latent_path(torch.zeros(2), torch.ones(2), steps=1)


def test_change_map_concentrates_where_the_latent_ages() -> None:
    young = torch.rand(4, *LATENT) * 0.01
    old = young.clone()
    old[:, 0, 1, 2, 0] += 1.0  # aging lives in one latent voxel -> one 2x2x2 image block
    change = age_change_map(upsample, young, old, steps=4)
    assert change.shape == (4, 6, 4)
    mask = np.zeros((4, 6, 4), dtype=bool)
    mask[2:4, 4:6, 0:2] = True
    np.testing.assert_allclose(change[mask], 1.0, rtol=1e-6)
    assert mass_fraction(change, mask) == pytest.approx(1.0)
    assert mass_fraction(change, ~mask) == pytest.approx(0.0, abs=1e-6)  # float32 path rounding
    signed = age_change_map(upsample, young, old, signed=True)
    np.testing.assert_allclose(signed, change, atol=1e-6)  # a linear decoder: monotone


def test_pairs_average_their_maps() -> None:
    young, old = torch.zeros(2, *LATENT), torch.zeros(2, *LATENT)
    old[0, 0, 0, 0, 0], old[1, 0, 0, 0, 0] = 1.0, 3.0
    change = age_change_map(upsample, young, old, pairs=[(0, 0), (1, 1)])
    assert change[0, 0, 0] == pytest.approx(2.0)  # mean of |1| and |3|
    with pytest.raises(BrainAgeError, match="pairs must index young"):
        age_change_map(upsample, young, old, pairs=[(0, 2)])


def test_mass_fraction_is_a_share_of_absolute_mass() -> None:
    change = np.array([[1.0, -3.0], [0.0, 4.0]])
    mask = np.array([[True, True], [False, False]])
    assert mass_fraction(change, mask) == pytest.approx(0.5)
    with pytest.raises(BrainAgeError, match="differ in shape"):
        mass_fraction(change, mask[0])
    with pytest.raises(BrainAgeError, match="zero everywhere"):
        mass_fraction(np.zeros((2, 2)), mask)
