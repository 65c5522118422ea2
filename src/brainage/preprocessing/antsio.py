"""Between numpy/nibabel (RAS+ affines) and ANTsPy images (ITK LPS+ origin/spacing/direction),
plus the bundled MNI152 template as ANTs images.

The template is nilearn's ICBM 2009a symmetric MNI152 (loaded offline from the nilearn
wheel); it is skull-stripped, so its brain mask is the template T1 above a threshold.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import ants

    from brainage.preprocessing.grids import Grid

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def to_ants(data: np.ndarray, affine: np.ndarray) -> ants.ANTsImage:
    """A float32 ANTs image of `data` (X, Y, Z) placed by the RAS+ voxel-to-world `affine`."""
    import ants

    a = _RAS_TO_LPS @ np.asarray(affine, dtype=np.float64)
    spacing = np.linalg.norm(a[:3, :3], axis=0)  # (3,)
    direction = a[:3, :3] / spacing  # (3, 3), columns = axis directions in LPS
    return ants.from_numpy(
        np.ascontiguousarray(data, dtype=np.float32), origin=a[:3, 3].tolist(),
        spacing=spacing.tolist(), direction=direction,
    )


def affine_of(img: ants.ANTsImage) -> np.ndarray:
    """RAS+ voxel-to-world (4, 4) affine of an ANTs image."""
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(img.direction) * np.asarray(img.spacing)[None, :]
    lps[:3, 3] = img.origin
    return _RAS_TO_LPS @ lps


def grid_image(grid: Grid) -> ants.ANTsImage:
    """An all-zero ANTs image on `grid` (the reference domain for resampling)."""
    return to_ants(np.zeros(grid.shape, dtype=np.float32), grid.affine_array)


@lru_cache(maxsize=4)
def _template_nifti(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=resolution)
    return np.asarray(img.get_fdata(dtype=np.float32)), img.affine


def template_t1(resolution: int = 2) -> ants.ANTsImage:
    """The MNI152 template T1 (brain only, intensities about 0-1) at 1 or 2 mm."""
    data, aff = _template_nifti(resolution)
    return to_ants(data, aff)


def template_mask(resolution: int = 2, threshold: float = 0.2) -> ants.ANTsImage:
    """Template brain mask (template T1 > `threshold`, nilearn's definition) as 0/1 float."""
    data, aff = _template_nifti(resolution)
    return to_ants((data > threshold).astype(np.float32), aff)


@lru_cache(maxsize=8)
def _mask_on_grid_cached(grid: Grid, threshold: float, mask_threshold: float) -> np.ndarray:
    import ants

    res = 1 if min(grid.spacing) < 2 else 2
    resampled = ants.resample_image_to_target(
        template_mask(res, threshold), grid_image(grid), interp_type="linear"
    )
    out = resampled.numpy() > mask_threshold  # (X, Y, Z) on the grid
    out.setflags(write=False)
    return out


def template_mask_on_grid(
    grid: Grid, threshold: float = 0.2, mask_threshold: float = 0.5
) -> np.ndarray:
    """The template brain mask resampled onto `grid`, as a read-only bool array."""
    return _mask_on_grid_cached(grid, threshold, mask_threshold)


@contextlib.contextmanager
def ants_seed(seed: int | None) -> Iterator[None]:
    """Fix ANTs' metric-sampling seed inside the block (ANTsPy reads ``ants.config``)."""
    import ants

    old = ants.config._random_seed
    ants.config._random_seed = seed
    try:
        yield
    finally:
        ants.config._random_seed = old


#: ITK threads by default: 1. ANTs' multithreaded Mattes mutual information accumulates its
#: per-thread results in a varying order, so with 2 threads two runs of the same scan and
#: spec register differently (affine entries by up to 0.04; voxels by up to 0.07 z on the
#: 2 mm grid); single-threaded, runs are bit-identical. The seed alone does not fix this
#: (it is set, see ants_seed). Measured and costed in docs/preprocessing.md.
DETERMINISTIC_ITK_THREADS = 1


def deterministic_itk() -> None:
    """Single-threaded ITK from here on, unless ITK already started in this process."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(DETERMINISTIC_ITK_THREADS)


def set_threads(n: int, itk_threads: int = DETERMINISTIC_ITK_THREADS) -> None:
    """Torch/OpenMP threads, and ITK/ANTs threads (ITK reads its count when it first starts).

    Args:
        n: Torch and OpenMP threads (deepbet).
        itk_threads: ITK threads; more than 1 is faster per scan but not reproducible.
    """
    from brainage.parallel import set_worker_threads

    set_worker_threads(n, itk_threads)
