"""Scans with a known pose, for testing and benchmarking registration.

A pose K is a (4, 4) world -> world affine (RAS+, mm). :func:`apply_pose` moves a scan's
head by K and samples it on a new axis-aligned grid (any voxel size and orientation), as a
scanner would. If registering the original gives the template -> native affine M, the true
answer for the posed scan is ``K @ M``; :func:`mean_displacement` measures how far a
recovered transform is from it over the template brain.

:func:`synthetic_head` builds a whole head (scalp, skull, CSF, the template brain, a neck)
in template space, so its true transform is K itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def random_pose(
    rng: np.random.Generator, max_rotation_deg: float = 12.0, max_shift_mm: float = 15.0,
    max_scale: float = 0.08,
) -> np.ndarray:
    """A random pose: rotation about each axis, shift, and scaling about the world origin."""
    ang = np.radians(rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    rot = np.eye(3)
    for axis, a in enumerate(ang):
        c, s = np.cos(a), np.sin(a)
        i, j = [k for k in range(3) if k != axis]
        r = np.eye(3)
        r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
        rot = r @ rot
    pose = np.eye(4)
    pose[:3, :3] = rot @ np.diag(1 + rng.uniform(-max_scale, max_scale, 3))
    pose[:3, 3] = rng.uniform(-max_shift_mm, max_shift_mm, 3)
    return pose


def _grid_affine(zooms: tuple[float, float, float], axcodes: str, centre: np.ndarray,
                 shape: tuple[int, int, int]) -> np.ndarray:
    """Axis-aligned affine with `axcodes` (e.g. ``"PSR"``) whose centre voxel sits at `centre`."""
    import nibabel as nib

    ornt = nib.orientations.axcodes2ornt(axcodes)  # (3, 2): world axis, direction per voxel axis
    lin = np.zeros((3, 3))
    for vox_axis, (world_axis, sign) in enumerate(ornt):
        lin[int(world_axis), vox_axis] = sign * zooms[vox_axis]
    aff = np.eye(4)
    aff[:3, :3] = lin
    aff[:3, 3] = centre - lin @ ((np.asarray(shape) - 1) / 2)
    return aff


def apply_pose(
    data: np.ndarray, affine: np.ndarray, pose: np.ndarray,
    zooms: tuple[float, float, float] = (2.0, 2.0, 2.0), axcodes: str = "RAS",
    shape: tuple[int, int, int] | None = None,
) -> Any:
    """The scan with its head moved by `pose`, sampled on a new grid: a nibabel image.

    Args:
        data: (X, Y, Z) intensities.
        affine: Its RAS+ affine.
        pose: (4, 4) world -> world move of the head.
        zooms: Voxel size of the new grid (along its voxel axes).
        axcodes: Orientation of the new grid (e.g. ``"PSR"``, ``"LPS"``).
        shape: New shape (default: covering the moved field of view).
    """
    import nibabel as nib
    from scipy import ndimage

    corners = np.array(np.meshgrid(*[[0, n - 1] for n in data.shape], indexing="ij"))
    corners = corners.reshape(3, -1).T  # (8, 3) voxel corners of the old volume
    moved = (np.c_[corners, np.ones(8)] @ (pose @ affine).T)[:, :3]  # (8, 3) world
    if shape is None:  # cover the whole moved field of view: the pose cuts nothing off
        ornt = nib.orientations.axcodes2ornt(axcodes)
        extent = moved.max(0) - moved.min(0)
        shape = tuple(int(np.ceil(extent[int(w)] / z)) + 1
                      for (w, _), z in zip(ornt, zooms, strict=True))
    centre = (moved.max(0) + moved.min(0)) / 2
    new_aff = _grid_affine(zooms, axcodes, centre, shape)  # type: ignore[arg-type]
    # new voxel -> world -> (pose^-1) -> old world -> old voxel
    to_old = np.linalg.inv(affine) @ np.linalg.inv(pose) @ new_aff
    out = ndimage.affine_transform(np.asarray(data, dtype=np.float32), to_old[:3, :3],
                                   offset=to_old[:3, 3], output_shape=shape, order=1, cval=0.0)
    return nib.Nifti1Image(out.astype(np.float32), new_aff)


def synthetic_head(resolution: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """A T1-like whole head in template space: ``(data, affine, brain_mask)``.

    The brain is the MNI152 template (intensities x100); around it a CSF rim, a dark skull,
    a bright scalp, and a neck below the brain; Rician-like noise.
    """
    from nilearn.datasets import load_mni152_template
    from scipy import ndimage

    tpl = load_mni152_template(resolution=resolution)
    t1 = tpl.get_fdata(dtype=np.float32)
    pad = 24 // resolution
    t1 = np.pad(t1, pad)  # room for the scalp
    affine = tpl.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.full(3, pad)
    brain = t1 > 0.2
    depth = ndimage.distance_transform_edt(~brain, sampling=resolution)  # mm outside the brain
    head = 100 * t1
    head[(depth > 0) & (depth <= 2)] = 20  # CSF
    head[(depth > 2) & (depth <= 7)] = 8  # skull
    head[(depth > 7) & (depth <= 11)] = 85  # scalp fat
    outside = depth > 11
    ii, jj, kk = np.indices(t1.shape)
    xyz = np.stack([ii, jj, kk], -1) @ affine[:3, :3].T + affine[:3, 3]
    neck = (xyz[..., 2] < -30) & ((xyz[..., 0] / 45) ** 2 + ((xyz[..., 1] + 25) / 50) ** 2 < 1)
    head[neck & outside] = 55
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 3, (2, *head.shape))
    head = np.sqrt((head + noise[0]) ** 2 + noise[1] ** 2)
    return head.astype(np.float32), affine, brain


def mean_displacement(
    recovered: np.ndarray, true: np.ndarray, points: np.ndarray
) -> float:
    """Mean distance (mm) between two template -> native transforms over `points` (N, 3)."""
    ph = np.c_[points, np.ones(len(points))]  # (N, 4)
    diff = (ph @ recovered.T)[:, :3] - (ph @ true.T)[:, :3]
    return float(np.linalg.norm(diff, axis=1).mean())
