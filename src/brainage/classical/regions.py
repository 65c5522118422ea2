"""Regions for classical features, made from the bundled MNI152 template (no atlas download).

No volumetric atlas ships in a wheel we can depend on, so the regions are derived from what
nilearn bundles (the ICBM 2009a *symmetric* template's brain mask and GM/WM priors):

* **parcels**: k-means of the coordinates of the feature mask's voxels (the template brain
  mask grown by 4 mm), with the left-right coordinate folded (|x|), so each parcel has a
  mirror twin: labels ``1..K`` left (x < 0), ``K+1..2K`` right. Compact parcels of similar
  size, a data-free stand-in for a lobar/gyral atlas at K = 8-64;
* **ventricles**: the template's deep CSF (CSF prior = 1 - GM - WM above 0.5, at least
  12 mm from the edge of the brain mask: the lateral and third ventricles), grown by 4 mm so
  that the enlarged ventricles of older brains stay inside it.

Label arrays are computed once per grid and stored with every model that uses them
(``weights.safetensors``), so a prediction never recomputes them: a later scikit-learn
cannot move a parcel under a fitted model.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

#: Distance (mm) from the brain-mask edge beyond which template CSF counts as ventricular.
VENTRICLE_DEPTH_MM = 12.0
#: Growth (mm) of the ventricle region.
VENTRICLE_GROW_MM = 4.0
#: Points k-means is fitted on (a regular subsample of the mask's voxels).
FIT_POINTS = 12000


def world_coordinates(grid: Any, shape: tuple[int, ...]) -> np.ndarray:
    """(X, Y, Z, 3) world (MNI, mm) coordinates of the voxel centres of `grid`."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    affine = np.asarray(grid.affine_array, dtype=np.float64)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def parcels(grid: Any, mask: np.ndarray, per_hemisphere: int) -> np.ndarray:
    """(X, Y, Z) uint16 parcel labels inside `mask` (0 outside): K left, K right."""
    return _parcels_cached(grid, _MaskKey(mask), int(per_hemisphere)).copy()


def ventricles(grid: Any, mask: np.ndarray) -> np.ndarray:
    """(X, Y, Z) bool ventricle region of `grid` (inside `mask`)."""
    from scipy import ndimage as ndi

    from brainage.preprocessing.antsio import template_mask_on_grid
    from brainage.preprocessing.tissues import template_priors

    brain = template_mask_on_grid(grid)
    csf = template_priors(grid)[2] * brain
    spacing = tuple(float(s) for s in grid.spacing)
    depth = ndi.distance_transform_edt(brain, sampling=spacing)
    deep = (csf > 0.5) & (depth >= VENTRICLE_DEPTH_MM)
    # keep the components that are large enough to be ventricles (drops speckle)
    lab, n = ndi.label(deep)
    if n:
        sizes = ndi.sum(deep, lab, index=np.arange(1, n + 1))
        deep = np.isin(lab, 1 + np.flatnonzero(sizes >= max(8, 0.05 * sizes.max())))
    steps = max(1, int(round(VENTRICLE_GROW_MM / min(spacing))))
    return ndi.binary_dilation(deep, iterations=steps) & mask


class _MaskKey:
    """Hashable wrapper of a bool mask (for the cache)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = np.asarray(mask, dtype=bool)
        self._hash = hash((self.mask.shape, np.packbits(self.mask).tobytes()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MaskKey) and self.mask.shape == other.mask.shape and \
            bool(np.array_equal(self.mask, other.mask))


@lru_cache(maxsize=8)
def _parcels_cached(grid: Any, key: _MaskKey, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    mask = key.mask
    xyz = world_coordinates(grid, mask.shape)[mask]  # (n, 3)
    folded = np.column_stack([np.abs(xyz[:, 0]), xyz[:, 1], xyz[:, 2]])
    # fit on a regular subsample (about 6 mm apart; k-means on every 2 mm voxel takes a
    # minute and moves the centres by a fraction of a voxel), then label every voxel
    stride = max(1, len(folded) // max(FIT_POINTS, 4 * k))
    km = KMeans(n_clusters=k, n_init=4, random_state=0).fit(folded[::stride])
    # order clusters by (z, y, x) of their centres so labels read alike on every grid
    order = np.lexsort(km.cluster_centers_[:, ::-1].T)
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    label = rank[km.predict(folded)] + 1 + k * (xyz[:, 0] > 0)
    out = np.zeros(mask.shape, dtype=np.uint16)
    out[mask] = label.astype(np.uint16)
    out.setflags(write=False)
    return out


def region_means(volume: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(n_labels,) mean of `volume` in labels 1..n_labels (0 where a label is empty)."""
    flat = labels.ravel().astype(np.int64)
    sums = np.bincount(flat, weights=np.asarray(volume, np.float64).ravel(),
                       minlength=n_labels + 1)[1:n_labels + 1]
    counts = np.bincount(flat, minlength=n_labels + 1)[1:n_labels + 1]
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
