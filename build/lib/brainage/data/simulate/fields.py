"""Smooth fields: separable linear resampling and low-frequency cosine (DCT) bases.

Smooth things (deformations, bias fields, regional patterns) are drawn as a few cosine
coefficients, like SPM's DCT warps, and evaluated on coarse grids; fine grids are then
filled by separable linear interpolation, which is cheap and deterministic.
"""

from __future__ import annotations

import numpy as np


def coarse_shape(shape: tuple[int, ...], stride: float) -> tuple[int, ...]:
    """Shape of a grid spanning `shape` with one node every `stride` voxels (ends included)."""
    return tuple(max(2, int(np.ceil((n - 1) / stride)) + 1) for n in shape)


def node_positions(n_fine: int, n_coarse: int) -> np.ndarray:
    """Fine-grid indices (float) of the `n_coarse` nodes spanning ``0 .. n_fine - 1``."""
    return np.linspace(0.0, n_fine - 1.0, n_coarse)


def resample_axis(a: np.ndarray, axis: int, pos: np.ndarray) -> np.ndarray:
    """Linearly interpolate `a` along `axis` at fractional indices `pos` (clamped to the ends).

    Args:
        a: Array of any shape.
        axis: Axis to resample.
        pos: (M,) fractional indices into ``a.shape[axis]``.

    Returns:
        Array with ``a.shape[axis]`` replaced by M, dtype of `a`.
    """
    n = a.shape[axis]
    p = np.clip(pos, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(p).astype(np.intp), max(n - 2, 0))
    i1 = np.minimum(i0 + 1, n - 1)
    w_shape = [1] * a.ndim
    w_shape[axis] = p.size
    w = (p - i0).astype(a.dtype).reshape(w_shape)
    lo = np.take(a, i0, axis=axis)
    hi = np.take(a, i1, axis=axis)
    lo += w * (hi - lo)
    return lo


def upsample(a: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Fill a fine grid from a coarse one whose nodes span it (see :func:`node_positions`).

    Args:
        a: (C, x, y, z) values at the coarse nodes.
        shape: Fine shape (X, Y, Z).

    Returns:
        (C, X, Y, Z) trilinear interpolation.
    """
    out = a
    for axis in (3, 2, 1):  # last axis first: the biggest pass then copies whole slabs
        pos = np.linspace(0.0, a.shape[axis] - 1.0, shape[axis - 1])
        out = resample_axis(out, axis, pos)
    return out


def cosine_basis(x: np.ndarray, lo: float, length: float, k: int) -> np.ndarray:
    """Cosine basis ``cos(pi * j * (x - lo) / length)`` for ``j = 1 .. k``.

    Args:
        x: (N,) coordinates.
        lo: Start of the interval the basis covers.
        length: Length of that interval.
        k: Number of frequencies.

    Returns:
        (N, k) float32.
    """
    j = np.arange(1, k + 1, dtype=np.float32)
    t = ((np.asarray(x, dtype=np.float32) - np.float32(lo)) * np.float32(np.pi / length))
    return np.cos(t[:, None] * j[None, :])


def dct_coefficients(rng: np.random.Generator, channels: int, k: int, sd: float) -> np.ndarray:
    """Random coefficients (channels, k, k, k) whose size falls with frequency.

    The coefficient of frequencies (a, b, c) is drawn with an SD proportional to
    ``1 / (a*a + b*b + c*c)``, scaled so that the field's SD is about `sd`.
    """
    j = np.arange(1, k + 1)
    f2 = j[:, None, None] ** 2 + j[None, :, None] ** 2 + j[None, None, :] ** 2
    scale = 1.0 / f2
    scale = scale / np.sqrt(np.sum(scale**2) / 8.0)  # cos^3 has mean square 1/8
    return (rng.standard_normal((channels, k, k, k)) * scale * sd).astype(np.float32)


def dct_combine(bases: list[np.ndarray], coefs: np.ndarray) -> np.ndarray:
    """Field values from per-axis bases: (N, k) each, coefs (C, k, k, k) -> (N, C)."""
    bx, by, bz = bases
    n, k = bx.shape
    bxy = (bx[:, :, None] * by[:, None, :]).reshape(n, k * k)
    full = (bxy[:, :, None] * bz[:, None, :]).reshape(n, k**3)  # (N, k^3)
    return full @ coefs.reshape(coefs.shape[0], k**3).T.astype(np.float32)


def dct_at_points(points: np.ndarray, coefs: np.ndarray, lo: np.ndarray,
                  length: np.ndarray) -> np.ndarray:
    """Evaluate a DCT field at scattered points.

    Args:
        points: (N, 3) coordinates.
        coefs: (C, k, k, k) coefficients.
        lo: (3,) start of the box the basis covers.
        length: (3,) size of that box.

    Returns:
        (N, C) float32 field values.
    """
    k = coefs.shape[1]
    return dct_combine([cosine_basis(points[:, d], lo[d], length[d], k) for d in range(3)], coefs)


def dct_on_axes(axes: list[np.ndarray], coefs: np.ndarray, lo: np.ndarray,
                length: np.ndarray) -> np.ndarray:
    """Evaluate a DCT field on the rectilinear grid ``axes[0] x axes[1] x axes[2]``.

    Returns:
        (C, nx, ny, nz) float32.
    """
    k = coefs.shape[1]
    bx, by, bz = (cosine_basis(a, lo[d], length[d], k) for d, a in enumerate(axes))
    out = np.einsum("cabd,xa->cxbd", coefs, bx)
    out = np.einsum("cxbd,yb->cxyd", out, by)
    return np.einsum("cxyd,zd->cxyz", out, bz).astype(np.float32)
