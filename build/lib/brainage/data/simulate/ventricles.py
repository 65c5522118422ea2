"""Ventricle widening as a flow: a smooth, folding-free deformation precomputed once.

The velocity is the gradient of the ventricle map smoothed at two scales. Following it
backward for "time" ``s`` (mm^2) maps every point to one closer to the ventricles, so
the ventricles look wider and the tissue around them is compressed; because it is a flow
of a smooth field, the map never folds, however large ``s``. Displacements are stored
for evenly spaced strengths and blended linearly between them per subject.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Strengths (mm^2) at which the flow is stored.
LEVELS = np.arange(-40.0, 361.0, 40.0)
_STEP = 10.0  # mm^2 per integration step (midpoint rule)


@dataclass(frozen=True, eq=False)
class VentricleFlow:
    """Backward displacements that widen the ventricles, on a grid around them.

    Attributes:
        levels: (L,) evenly spaced strengths (mm^2).
        displacement: (L, 3, x, y, z) displacement in template voxels at each strength.
        origin: (3,) template voxel index of the flow grid's first node.
        step: Flow grid spacing in template voxels.
    """

    levels: np.ndarray
    displacement: np.ndarray
    origin: np.ndarray
    step: float

    def bounds(self) -> tuple[slice, ...]:
        """Template-voxel slices outside which the flow does not move anything."""
        size = (np.array(self.displacement.shape[2:]) - 1) * self.step
        return tuple(slice(int(a), int(a + n) + 1) for a, n in zip(self.origin, size,
                                                                     strict=True))

    def displace(self, vox: np.ndarray, strength: float) -> np.ndarray:
        """Template voxel indices (N, 3) -> where they fetch from at `strength` (N, 3)."""
        s = float(np.clip(strength, self.levels[0], self.levels[-1]))
        f = (s - self.levels[0]) / (self.levels[1] - self.levels[0])
        i = min(int(f), len(self.levels) - 2)
        w = np.float32(f - i)
        node = (vox - self.origin) / self.step  # (N, 3) flow-grid coordinates
        inside = np.all((node > -1.0) & (node < np.array(self.displacement.shape[2:])), axis=1)
        node = node[inside].T  # (3, M)
        shift = np.zeros((3, node.shape[1]), np.float32)
        for level, weight in ((i, 1 - w), (i + 1, w)):
            if weight == 0:
                continue
            for d in range(3):
                shift[d] += weight * ndi.map_coordinates(
                    self.displacement[level, d], node, order=1, mode="constant", cval=0.0)
        out = vox.copy()
        out[inside] += shift.T
        return out


def build_flow(ventricles: np.ndarray, voxel_size: float) -> VentricleFlow:
    """Integrate the ventricle flow on a grid (about 2 mm) around the ventricles.

    Args:
        ventricles: (X, Y, Z) ventricle fraction on the template grid.
        voxel_size: Template grid spacing (mm); the template affine must be diagonal and
            positive (true for MNI152).
    """
    v = float(voxel_size)
    smooth = 0.6 * ndi.gaussian_filter(ventricles, 3.0 / v) + 0.4 * ndi.gaussian_filter(
        ventricles, 8.0 / v)
    grad = np.stack(np.gradient(smooth, v)).astype(np.float32) / v  # (3, X, Y, Z) vox/mm^2
    speed = np.sqrt(np.sum(grad * grad, axis=0))
    hit = np.argwhere(speed > 1e-2 * speed.max())
    step = max(1.0, round(2.0 / v))
    lo = np.maximum(hit.min(0) - 2, 0)
    hi = np.minimum(hit.max(0) + 2, np.array(ventricles.shape) - 1)
    axes = [np.arange(a, b + step, step, dtype=np.float32) for a, b in zip(lo, hi, strict=True)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"))  # (3, x, y, z) template voxels
    velocity = np.stack([ndi.map_coordinates(g, nodes, order=1) for g in grad])  # (3, x, y, z)
    unit = LEVELS[1] - LEVELS[0]
    disp = np.zeros((len(LEVELS), *velocity.shape), np.float32)
    for sign in (1.0, -1.0):
        one = _exponential(sign * unit * velocity, step)
        current = np.zeros_like(one)
        for k in sorted((k for k, s in enumerate(LEVELS) if s * sign > 0),
                        key=lambda k: abs(LEVELS[k])):
            current = _compose(one, current, step)
            disp[k] = current
    return VentricleFlow(LEVELS.copy(), disp, lo.astype(np.float32), step)


def _compose(a: np.ndarray, b: np.ndarray, step: float) -> np.ndarray:
    """Displacement (3, x, y, z) of ``(id + a) o (id + b)``, both in template voxels."""
    grid = np.indices(b.shape[1:], dtype=np.float32)
    at = grid + b / step  # flow-grid coordinates of where b sends each node
    return b + np.stack([ndi.map_coordinates(c, at, order=1, mode="nearest") for c in a])


def _exponential(velocity: np.ndarray, step: float, squarings: int = 5) -> np.ndarray:
    """Displacement after flowing for unit time along `velocity` (scaling and squaring)."""
    u = velocity / 2.0**squarings
    for _ in range(squarings):
        u = _compose(u, u, step)
    return u
