"""Multi-view augmentation on a tiny unequal-axis volume (24 x 28 x 20)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from brainage.data.views import (
    DEFAULTS,
    KINDS,
    RandomCropPad,
    RandomCutout,
    make_views,
    parse_spec,
    view_transform,
)
from brainage.errors import BrainAgeError

SHAPE = (24, 28, 20)
ALL = "+".join(KINDS)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    """(1, 24, 28, 20): a bright off-centre ellipsoid on a zero background, plus texture."""
    grid = torch.meshgrid(*[torch.linspace(-1, 1, n) for n in SHAPE], indexing="ij")
    inside = (grid[0] - 0.2) ** 2 + (grid[1] / 0.8) ** 2 + (grid[2] / 0.7) ** 2 < 0.6
    texture = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    return (inside * (0.5 + 0.5 * texture)).float()[None]


@pytest.mark.parametrize("spec", ["none", *KINDS, ALL])
def test_shapes_kept_and_same_seed_reproduces(image: torch.Tensor, spec: str) -> None:
    views = make_views(image, spec, views=3, seed=7)
    assert views.shape == (3, 1, *SHAPE) and views.dtype == torch.float32
    np.random.seed(1)  # other generators do not matter
    random.seed(1)
    torch.manual_seed(123)
    again = make_views(image, spec, views=3, seed=7)
    torch.testing.assert_close(views, again, rtol=0, atol=0)
    assert torch.isfinite(views).all()


def test_none_gives_identical_views_of_the_input(image: torch.Tensor) -> None:
    views = make_views(image, "none", views=2, seed=0)
    assert torch.equal(views[0], image) and torch.equal(views[1], image)
    assert torch.equal(make_views(image.numpy(), [], views=1)[0], image)  # empty list = none


@pytest.mark.parametrize("spec", [*KINDS, ALL])
def test_views_and_seeds_differ(image: torch.Tensor, spec: str) -> None:
    """Views differ from each other and across seeds (flip: in at least one of a few draws)."""
    draws = [make_views(image, spec, views=2, seed=s) for s in range(4)]
    assert any(not torch.equal(d[0], d[1]) for d in draws)
    assert any(not torch.equal(draws[0], d) for d in draws[1:])


def test_seed_leaves_the_global_generator_alone(image: torch.Tensor) -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    make_views(image, ALL, seed=1)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(5)
    a = make_views(image, ALL)  # no seed: draws from the global generator
    b = make_views(image, ALL)
    assert not torch.equal(a, b)


def _box(mask: torch.Tensor) -> tuple[list[int], int]:
    """Bounding-box sides of the True voxels of a (D, H, W) mask, and their count."""
    where = torch.nonzero(mask)
    return (where.max(0).values - where.min(0).values + 1).tolist(), int(mask.sum())


def test_crop_pad_and_cutout_by_construction(image: torch.Tensor) -> None:
    ones = torch.ones(2, *SHAPE)  # two channels get the same box
    torch.manual_seed(0)
    for _ in range(5):
        erased = RandomCutout(size=0.25)(ones)
        assert torch.equal(erased[0], erased[1])
        assert _box(erased[0] == 0) == ([6, 7, 5], 6 * 7 * 5)  # a quarter of each axis
        kept = RandomCropPad(fraction=0.2)(ones)
        assert kept.shape == ones.shape and torch.equal(kept[0], kept[1])
        sides, count = _box(kept[0] == 1)  # the kept block is one solid box
        assert count == sides[0] * sides[1] * sides[2]
        assert all(n - int(0.2 * n) <= s <= n for s, n in zip(sides, SHAPE, strict=True))
    assert torch.equal(RandomCropPad(fraction=0.0)(image), image)


def test_per_view_specs_and_overrides(image: torch.Tensor) -> None:
    views = make_views(image, per_view=["none", {"cutout": {"size": 0.5}}], views=2, seed=3)
    assert torch.equal(views[0], image) and not torch.equal(views[1], image)
    assert parse_spec("crop+cutout") == {"crop": DEFAULTS["crop"], "cutout": DEFAULTS["cutout"]}
    assert parse_spec("none") == {} and parse_spec(["none"]) == {}
    order = [type(t).__name__ for t in view_transform("cutout+crop").transforms]
    assert order == ["RandomCropPad", "RandomCutout"]  # canonical order, not the spec's


def test_bad_specs_and_images(image: torch.Tensor) -> None:
    with pytest.raises(BrainAgeError, match="Did you mean 'cutout'"):
        view_transform("cutuot")
    with pytest.raises(BrainAgeError, match="unknown setting"):
        view_transform({"crop": {"size": 0.1}})
    with pytest.raises(BrainAgeError, match=r"\[0, 1\)"):
        view_transform({"cutout": {"size": 1.5}})
    with pytest.raises(BrainAgeError, match=r"\(C, D, H, W\)"):
        make_views(image[0])
    with pytest.raises(BrainAgeError, match="one spec per view"):
        make_views(image, per_view=["none"], views=2)
    with pytest.raises(BrainAgeError, match="views must be"):
        make_views(image, views=0)


def test_subjects_move_together_and_labels_are_not_erased() -> None:
    import torchio as tio

    ones = torch.ones(1, *SHAPE)
    subject = tio.Subject(t1=tio.ScalarImage(tensor=ones), brain=tio.LabelMap(tensor=ones.int()))
    torch.manual_seed(2)
    out = view_transform("crop+cutout")(subject)
    kept = out["brain"].data[0] == 1
    sides, count = _box(kept)
    assert count == sides[0] * sides[1] * sides[2] < ones.numel()  # labels: cropped, not erased
    assert (out["t1"].data[0][~kept] == 0).all()  # the image moved with them
    assert (out["t1"].data[0][kept] == 0).sum() > 0  # and only the image has the hole
