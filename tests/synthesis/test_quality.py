"""SSIM and masked correlation of volumes."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.errors import BrainAgeError
from brainage.synthesis.quality import correlation, ssim


def _volume(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in (12, 14, 10)], indexing="ij")
    return ((zz**2 + yy**2 + xx**2) < 0.8) * 0.8 + 0.05 * rng.standard_normal((12, 14, 10))


def test_identical_volumes_score_one_and_damage_lowers_both():
    a = _volume()
    mask = a > 0.4
    assert ssim(a, a, mask) == pytest.approx(1.0) and correlation(a, a, mask) == pytest.approx(1.0)
    noisy = a + 0.2 * np.random.default_rng(1).standard_normal(a.shape)
    blurred = np.full_like(a, a[mask].mean())
    assert 0 < ssim(a, noisy, mask) < 0.9
    assert ssim(a, blurred) < ssim(a, noisy)
    assert correlation(a, noisy, mask) < 0.9
    assert correlation(a, 2 * a + 1, mask) == pytest.approx(1.0)  # scale-free; SSIM is not
    assert ssim(a, 2 * a + 1, mask) < 0.5


def test_shapes_and_empty_masks_are_refused():
    a = _volume()
    with pytest.raises(BrainAgeError, match="one shape"):
        ssim(a, a[:-1])
    with pytest.raises(BrainAgeError, match="hold voxels"):
        correlation(a, a, np.zeros(a.shape, bool))
    with pytest.raises(BrainAgeError, match="constant"):
        correlation(a, np.ones_like(a))
