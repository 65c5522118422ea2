"""Reconstruction quality of 3D volumes: SSIM and correlation inside a mask.

:func:`ssim` is the structural similarity of Wang et al. (2004) with a Gaussian window
(sigma 1.5 voxels, as scikit-image's ``gaussian_weights=True``), computed in 3D; constants
``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` for the data range ``L``. The map is averaged
over a mask (the brain), since the background of skull-stripped inputs is zero in both.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from brainage.errors import BrainAgeError


def _pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise BrainAgeError(f"expected two 3D volumes of one shape, got {a.shape} and {b.shape}.")
    m = np.ones(a.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != a.shape or not m.any():
        raise BrainAgeError(f"mask {m.shape} must match the volumes {a.shape} and hold voxels.")
    return a, b, m


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, data_range: float = 1.0,
         sigma: float = 1.5) -> float:
    """Mean 3D SSIM of `a` and `b` over `mask` (default every voxel); 1 = identical."""
    a, b, m = _pair(a, b, mask)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return ndi.gaussian_filter(x, sigma, truncate=3.5, mode="constant")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float((num / den)[m].mean())


def correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of the voxels of `a` and `b` inside `mask`."""
    a, b, m = _pair(a, b, mask)
    x, y = a[m] - a[m].mean(), b[m] - b[m].mean()
    denom = np.sqrt((x * x).sum() * (y * y).sum())
    if not denom > 0:
        raise BrainAgeError("a volume is constant inside the mask; correlation undefined.")
    return float((x * y).sum() / denom)
