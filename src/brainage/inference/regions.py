"""Region summary of an explanation map: tissue classes and coarse lobes on any MNI grid.

Tissue classes come from nilearn's bundled MNI152 (2009, symmetric) grey-matter,
white-matter and brain-mask maps (offline), resampled onto the map's grid: each brain
voxel goes to the most probable of GM, WM and CSF (= brain - GM - WM). No atlas ships
offline with the installed packages, so the regions are **coarse boxes in MNI
coordinates** (mm), applied in this order to brain voxels:

===================  ==================================================================
posterior_fossa      z < -15 and y < -35 (cerebellum, lower brainstem)
deep_central         |x| < 25, -45 < y < 30, -5 < z < 35 (lateral ventricles, basal
                     ganglia, thalamus, periventricular white matter)
occipital            y < -70
temporal             |x| > 30 and z < 5
frontal              y > -15
parietal             the rest (-70 <= y <= -15, above the temporal box)
===================  ==================================================================

These are approximations of lobes (a few centimetres off at the borders), meant to say
"mostly ventricular" or "mostly frontal cortex", not to replace an anatomical atlas.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from brainage.errors import InputError

TISSUES = ("gm", "wm", "csf")
REGIONS = ("frontal", "parietal", "temporal", "occipital", "posterior_fossa", "deep_central")
#: Column descriptions of the region table (the JSON sidecar).
COLUMNS: dict[str, str] = {
    "kind": "'tissue' (MNI152 GM/WM/CSF class), 'region' (coarse MNI box, see docs) or "
            "'total' (whole grid, or 'outside_brain')",
    "name": "tissue class or region name",
    "voxels": "number of grid voxels in the class or region",
    "volume_ml": "volume in millilitres",
    "volume_fraction": "fraction of the template brain-mask volume (n/a outside the brain)",
    "abs_sum": "sum of |attribution| over the voxels (years)",
    "abs_fraction": "abs_sum divided by the sum of |attribution| over the whole grid",
    "enrichment": "abs_fraction / volume_fraction: > 1 means more attribution than its size",
    "signed_sum": "sum of signed attribution (years; > 0 pushes the predicted age up)",
    "mean_signed": "mean signed attribution per voxel (years)",
}
#: Units of the numeric columns (the JSON sidecar).
UNITS: dict[str, str] = {"volume_ml": "ml", "abs_sum": "years", "signed_sum": "years",
                         "mean_signed": "years"}


@functools.lru_cache(maxsize=1)
def _mni_maps() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """nilearn's 2 mm MNI152 GM, WM and brain-mask maps (0-1) and their affine."""
    from nilearn import datasets

    imgs = {"gm": datasets.load_mni152_gm_template(resolution=2),
            "wm": datasets.load_mni152_wm_template(resolution=2),
            "brain": datasets.load_mni152_brain_mask(resolution=2)}
    maps = {k: np.asarray(img.get_fdata(dtype=np.float32)) for k, img in imgs.items()}
    return maps, np.asarray(imgs["gm"].affine, dtype=np.float64)


def _world(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """MNI mm of every voxel centre: ``(3, D, H, W)``."""
    ijk = np.indices(shape, dtype=np.float64).reshape(3, -1)  # (3, N)
    return (affine[:3, :3] @ ijk + affine[:3, 3:]).reshape(3, *shape)


def _on_grid(maps: dict[str, np.ndarray], src_affine: np.ndarray, world: np.ndarray
             ) -> dict[str, np.ndarray]:
    """Sample each map (linear) at the world points ``(3, D, H, W)``; 0 outside."""
    from scipy import ndimage

    inv = np.linalg.inv(src_affine)
    pts = world.reshape(3, -1)
    vox = inv[:3, :3] @ pts + inv[:3, 3:]  # (3, N) source voxel coordinates
    return {k: ndimage.map_coordinates(a, vox, order=1, cval=0.0).reshape(world.shape[1:])
            for k, a in maps.items()}


def tissue_labels(grid_affine: np.ndarray, grid_shape: tuple[int, int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Brain mask and tissue class index (0 GM, 1 WM, 2 CSF; -1 outside) on a grid."""
    maps, src = _mni_maps()
    on = _on_grid(maps, src, _world(tuple(grid_shape), np.asarray(grid_affine, float)))
    brain = on["brain"] > 0.5
    csf = np.clip(on["brain"] - on["gm"] - on["wm"], 0.0, 1.0)
    cls = np.argmax(np.stack([on["gm"], on["wm"], csf]), axis=0)
    return brain, np.where(brain, cls, -1)


def region_labels(grid_affine: np.ndarray, grid_shape: tuple[int, int, int]) -> np.ndarray:
    """Index into :data:`REGIONS` of every voxel by the MNI boxes of the module docstring."""
    x, y, z = _world(tuple(grid_shape), np.asarray(grid_affine, float))
    rules = {
        "posterior_fossa": (z < -15) & (y < -35),
        "deep_central": (np.abs(x) < 25) & (y > -45) & (y < 30) & (z > -5) & (z < 35),
        "occipital": y < -70,
        "temporal": (np.abs(x) > 30) & (z < 5),
        "frontal": y > -15,
    }
    out = np.full(tuple(grid_shape), REGIONS.index("parietal"), dtype=np.int8)
    taken = np.zeros(tuple(grid_shape), dtype=bool)
    for name, rule in rules.items():
        out[rule & ~taken] = REGIONS.index(name)
        taken |= rule
    return out


def _row(kind: str, name: str, sel: np.ndarray, sal: np.ndarray, total_abs: float,
         brain_voxels: int, voxel_ml: float) -> dict[str, object]:
    n = int(sel.sum())
    a = float(np.abs(sal[sel]).sum())
    s = float(sal[sel].sum())
    vol_frac = n / brain_voxels if kind != "total" or name == "brain" else np.nan
    abs_frac = a / total_abs if total_abs > 0 else np.nan
    return {"kind": kind, "name": name, "voxels": n, "volume_ml": n * voxel_ml,
            "volume_fraction": vol_frac, "abs_sum": a, "abs_fraction": abs_frac,
            "enrichment": abs_frac / vol_frac if vol_frac and vol_frac > 0 else np.nan,
            "signed_sum": s, "mean_signed": s / n if n else np.nan}


def region_summary(saliency: np.ndarray, grid_affine: np.ndarray,
                   grid_shape: tuple[int, int, int] | None = None) -> pd.DataFrame:
    """Sum an explanation map over tissue classes and coarse regions.

    Args:
        saliency: ``(D, H, W)`` attribution map on the grid.
        grid_affine: ``(4, 4)`` voxel-to-MNI (mm) affine of the grid.
        grid_shape: Expected shape (checked against the map when given).

    Returns:
        One row per tissue class, per region (brain voxels only), and for ``brain``,
        ``outside_brain`` and ``all``; columns as in :data:`COLUMNS`.

    Raises:
        BrainAgeError: the map is not 3D, not finite or not of `grid_shape`.
    """
    sal = np.asarray(saliency, dtype=np.float64)
    shape = tuple(grid_shape) if grid_shape is not None else sal.shape
    if sal.ndim != 3 or sal.shape != shape or not np.all(np.isfinite(sal)):
        raise InputError(f"saliency map of shape {sal.shape} must be a finite 3D map of "
                            f"the grid shape {shape}. Fix: pass the map computed on that grid.")
    aff = np.asarray(grid_affine, dtype=np.float64)
    brain, tissue = tissue_labels(aff, shape)  # type: ignore[arg-type]
    region = region_labels(aff, shape)  # type: ignore[arg-type]
    voxel_ml = abs(float(np.linalg.det(aff[:3, :3]))) / 1000.0
    total_abs, n_brain = float(np.abs(sal).sum()), max(int(brain.sum()), 1)
    rows = [_row("tissue", t, tissue == i, sal, total_abs, n_brain, voxel_ml)
            for i, t in enumerate(TISSUES)]
    rows += [_row("region", r, brain & (region == i), sal, total_abs, n_brain, voxel_ml)
             for i, r in enumerate(REGIONS)]
    for name, sel in (("brain", brain), ("outside_brain", ~brain),
                      ("all", np.ones(shape, dtype=bool))):
        rows.append(_row("total", name, sel, sal, total_abs, n_brain, voxel_ml))
    return pd.DataFrame(rows, columns=list(COLUMNS))
