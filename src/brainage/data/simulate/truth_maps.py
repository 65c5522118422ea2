"""Where the simulator puts aging: the true young -> old change in template (MNI) space.

The simulated anatomy ages in two ways only (:mod:`.anatomy`): the lateral ventricles widen
and cortical grey matter thins into CSF. For an average subject (no individual scale, warp
or pattern) this module renders the template-space brain at a young and an old brain age,
with the same chain as a scan (thinned cortex, then the ventricle flow), and returns their
absolute difference: the ground truth that maps of "age-related regions" (saliency, GAN
latent interpolation) can be scored against, after :func:`on_grid` puts it on a prepared
grid.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import anatomy
from brainage.data.simulate.templates import load_templates


def average_anatomy() -> anatomy.Anatomy:
    """The anatomy of an average subject: template size, no warp, no individual pattern."""
    k = anatomy.DCT_K
    return anatomy.Anatomy(scale=np.ones(3), warp=np.zeros((3, k, k, k)),
                           pattern=np.zeros((1, k, k, k)), ventricle_offset=0.0,
                           thinning_factor=1.0, skull_factor=1.0)


def aged_brain(brain_age: float, voxel_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """The average subject's brain (T1, white matter = 1, 0 outside) at `brain_age`.

    Returns:
        (image (X, Y, Z) float32 on the template grid, its (4, 4) voxel -> MNI mm affine).
    """
    t = load_templates(voxel_size)
    body = average_anatomy()
    head = anatomy.template_image(t, body, brain_age) * t.brain  # the brain only
    grid = np.indices(t.shape, dtype=np.float32).reshape(3, -1).T  # (N, 3) voxel indices
    vox = anatomy.age_points(t.world(grid), t, anatomy.ventricle_strength(brain_age, body))
    image = ndi.map_coordinates(head, vox.T, order=1, mode="constant").reshape(t.shape)
    return image.astype(np.float32), t.affine


def aging_change(young: float = 25.0, old: float = 80.0, voxel_size: float = 2.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``|brain(old) - brain(young)|`` of the average subject, and the template affine."""
    a, affine = aged_brain(young, voxel_size)
    b, _ = aged_brain(old, voxel_size)
    return np.abs(b - a), affine


def on_grid(volume: np.ndarray, affine: np.ndarray, shape: tuple[int, int, int],
            grid_affine: np.ndarray, smooth: bool = True) -> np.ndarray:
    """Resample a template-space map onto a grid (e.g. a prepared spec's ``grid``).

    With ``smooth`` the map is first blurred to the target spacing (a Gaussian whose FWHM
    is the ratio of the spacings), so a coarse grid sees the local mean, not an alias.
    """
    src = np.abs(np.diag(affine)[:3])
    dst = np.linalg.norm(np.asarray(grid_affine)[:3, :3], axis=0)
    if smooth:
        sigma = np.maximum(dst / src - 1.0, 0.0) / 2.355
        volume = ndi.gaussian_filter(volume, sigma) if np.any(sigma > 0) else volume
    index = np.indices(shape, dtype=np.float64).reshape(3, -1)  # (3, N) target voxels
    world = np.asarray(grid_affine)[:3, :3] @ index + np.asarray(grid_affine)[:3, 3:4]
    inv = np.linalg.inv(affine)
    vox = inv[:3, :3] @ world + inv[:3, 3:4]
    return ndi.map_coordinates(volume, vox, order=1, mode="constant").reshape(shape)


__all__ = ["aged_brain", "aging_change", "average_anatomy", "on_grid"]
