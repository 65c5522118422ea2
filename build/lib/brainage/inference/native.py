"""Carry a map on the template grid back into a scan's native space.

Preprocessing records the affine part of the registration, template world -> native world
(RAS+ mm), in the scan's QC record (``affine_template_to_native``) but does not keep the
ANTs transform files. :func:`map_to_native` writes that matrix as an ANTs affine transform
and applies its inverse (``whichtoinvert=[True]``) with
:func:`brainage.preprocessing.registration.to_native`, sampling the map linearly at every
voxel of the native image.

Values are rescaled so that a map in "years per template voxel" becomes "years per native
voxel": each native value is multiplied by ``native voxel volume / (grid voxel volume x
|det A|)`` (A = the matrix's linear part), so sums over a region are preserved up to
interpolation error. For a SyN (nonlinear) spec only the affine part can be applied; the
caller records that.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from brainage.errors import InputError

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS+ <-> ITK LPS+


def write_ants_affine(matrix: np.ndarray, path: str | Path) -> str:
    """Write a (4, 4) RAS+ template -> native matrix as an ANTs affine (inverse of
    :func:`brainage.preprocessing.registration.read_affine`)."""
    import ants

    m = _FLIP @ np.asarray(matrix, dtype=np.float64) @ _FLIP  # (4, 4) in LPS
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=m[:3, :3],
        translation=m[:3, 3].tolist(), center=[0.0, 0.0, 0.0],
    )
    ants.write_transform(tx, str(path))
    return str(path)


def check_matrix(matrix: Any) -> np.ndarray:
    """A finite, invertible (4, 4) affine as float64.

    Raises:
        BrainAgeError: wrong shape, non-finite or singular.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)) or abs(np.linalg.det(m[:3, :3])) < 1e-6:
        raise InputError(
            f"template-to-native transform {m.tolist()} is not an invertible 4x4 affine. "
            "Fix: re-run preprocessing for this scan (its QC record holds the transform).")
    return m


def map_to_native(saliency: np.ndarray, grid_affine: np.ndarray, matrix: np.ndarray,
                  native_shape: tuple[int, ...], native_affine: np.ndarray) -> np.ndarray:
    """Resample a grid map onto a native image grid.

    Args:
        saliency: ``(X, Y, Z)`` map on the template grid.
        grid_affine: ``(4, 4)`` RAS+ affine of the grid (MNI mm).
        matrix: ``(4, 4)`` RAS+ template world -> native world affine.
        native_shape: Spatial shape of the native image (its first three axes).
        native_affine: ``(4, 4)`` RAS+ affine of the native image (any orientation).

    Returns:
        ``(X', Y', Z')`` float32 map in the native voxel order, in units per native voxel.
    """
    from brainage.preprocessing.antsio import to_ants
    from brainage.preprocessing.registration import Registration, to_native

    m = check_matrix(matrix)
    g_aff = np.asarray(grid_affine, dtype=np.float64)
    n_aff = np.asarray(native_affine, dtype=np.float64)
    shape = tuple(int(s) for s in native_shape[:3])
    moving = to_ants(np.asarray(saliency, dtype=np.float32), g_aff)
    reference = to_ants(np.zeros(shape, dtype=np.float32), n_aff)
    with tempfile.TemporaryDirectory(prefix="brainage-explain-") as tmp:
        f = write_ants_affine(m, Path(tmp) / "template_to_native.mat")
        reg = Registration(fwd=[f], inv=[f], inv_flags=[True], warped=None, matrix=m)
        out = to_native(moving, reference, reg, interpolator="linear").numpy()  # (X', Y', Z')
    scale = abs(np.linalg.det(n_aff[:3, :3])) / (
        abs(np.linalg.det(g_aff[:3, :3])) * abs(np.linalg.det(m[:3, :3])))
    return (out * scale).astype(np.float32)
