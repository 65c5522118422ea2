"""The MNI152 template and its tissue maps, prepared once per resolution.

Everything here is subject-independent and cached: tissue maps (GM, WM, CSF), the
lateral ventricles, the flow that pushes the ventricle walls outward, the cortical
thinning susceptibility, and the distance maps that place a scalp/skull shell around the
(skull-stripped) template brain.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import fields
from brainage.data.simulate.ventricles import VentricleFlow, build_flow

#: Extra template space below the brain (mm), for the skull base and a neck.
NECK_MM = 60.0
#: Shell voxels are those within this distance (mm) of the brain or neck core.
SHELL_MM = 18.0
#: Box (MNI mm, lo/hi) that the centroid of a lateral-ventricle component must fall in.
_VENTRICLE_BOX = (np.array([-25.0, -45.0, -5.0]), np.array([25.0, 30.0, 35.0]))
_FIXED_SEED = 20240611  # the regional atrophy pattern is the same for every dataset


@dataclass(frozen=True, eq=False)
class Templates:
    """Template-space arrays on one grid of shape (X, Y, Z), float32.

    Attributes:
        voxel_size: Grid spacing in mm.
        affine: (4, 4) voxel index -> MNI mm (diagonal).
        axes: Voxel centres (mm) along x, y and z.
        t1: Brain T1 intensity scaled so white matter is about 1; 0 outside the brain.
        gm: Grey-matter probability.
        wm: White-matter probability.
        csf: CSF probability (brain mask minus GM minus WM).
        brain: Brain-mask fraction (the template mask, downsampled).
        ventricles: Lateral-ventricle fraction.
        flow: The flow that widens the ventricles (see :mod:`.ventricles`).
        thinning: Susceptibility of each voxel's GM to turn into CSF with age
            (closeness to sulcal CSF x regional pattern), 0 to 1.8.
        head_distance: Distance (mm) to the brain or neck core; 0 inside them.
        neck: 1 where the shell belongs to the neck rather than the skull.
        shell_index: Flat indices of voxels that get scalp/skull/neck intensities.
        gm_index: Flat indices of voxels whose GM can thin.
        tissue_means: (3,) T1 intensity of pure GM, WM, CSF.
        centre: (3,) MNI mm of the head's centre (rotation and scaling centre).
    """

    voxel_size: float
    affine: np.ndarray
    axes: list[np.ndarray]
    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray
    ventricles: np.ndarray
    flow: VentricleFlow
    thinning: np.ndarray
    head_distance: np.ndarray
    neck: np.ndarray
    shell_index: np.ndarray
    gm_index: np.ndarray
    tissue_means: np.ndarray
    centre: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Grid shape (X, Y, Z)."""
        return self.gm.shape  # type: ignore[return-value]

    def world(self, index: np.ndarray) -> np.ndarray:
        """(N, 3) voxel indices -> (N, 3) MNI mm."""
        diag = np.diag(self.affine)[:3].astype(np.float32)
        return index * diag + self.affine[:3, 3].astype(np.float32)


_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def _read_nilearn_maps() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Raw MNI152 maps bundled in nilearn, each rescaled to a maximum of 1, and the affine.

    Reads nilearn's bundled files directly (importing ``nilearn.datasets`` takes seconds);
    falls back to its loaders if the files moved. Same data as ``load_mni152_*_template``;
    the brain mask is nilearn's rule (template > 0.2).
    """
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nilearn")
    where = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(where[0]) / "datasets" / "data" if where else None
    paths = {k: folder / f for k, f in _FILES.items()} if folder else {}
    if paths and all(p.is_file() for p in paths.values()):
        imgs = {k: nib.load(p) for k, p in paths.items()}
    else:  # pragma: no cover - depends on the nilearn release
        from nilearn import datasets

        imgs = {"t1": datasets.load_mni152_template(resolution=1),
                "gm": datasets.load_mni152_gm_template(resolution=1),
                "wm": datasets.load_mni152_wm_template(resolution=1)}
    maps = {}
    for k, img in imgs.items():
        a = np.asarray(img.get_fdata(dtype=np.float32))
        maps[k] = a / a.max()
    return maps, np.asarray(imgs["t1"].affine, dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _load_1mm() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, tuple[int, ...]]:
    """The MNI152 (2009, symmetric) maps at 1 mm, with the ventricles added.

    Returns:
        (maps cropped to the brain's box plus a margin, float32; 1 mm affine;
        (3,) index of the crop's first voxel; shape of the full 1 mm grid).
    """
    maps, affine = _read_nilearn_maps()
    if not (np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3])))
            and np.all(np.diag(affine)[:3] > 0)):
        raise RuntimeError(f"expected a diagonal, positive MNI152 affine, got {affine.tolist()}")
    full = maps["t1"].shape
    inside = np.argwhere(maps["t1"] > 0.2)
    lo = np.maximum(inside.min(0) - 8, 0)
    hi = np.minimum(inside.max(0) + 9, full)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    maps = {k: a[box] for k, a in maps.items()}
    maps["brain"] = (maps["t1"] > 0.2).astype(np.float32)
    for k in ("t1", "gm", "wm"):
        maps[k] = np.clip(maps[k], 0.0, 1.0) * maps["brain"]
    csf = np.clip(maps["brain"] - maps["gm"] - maps["wm"], 0.0, 1.0)
    crop_affine = affine.copy()
    crop_affine[:3, 3] += affine[:3, :3] @ lo
    maps["ventricles"] = _find_ventricles(csf, maps["brain"], crop_affine)
    return maps, affine, lo, full


def _find_ventricles(csf: np.ndarray, brain: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Mask (float32) of the CSF components at the known lateral-ventricle location."""
    labels, _ = ndi.label((csf > 0.5) & (brain > 0.5))
    ml = np.bincount(labels.ravel()) * abs(np.linalg.det(affine[:3, :3])) / 1000.0
    lo, hi = _VENTRICLE_BOX
    keep = []
    for label, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None or not 3.0 < ml[label] < 100.0:
            continue
        centre = np.argwhere(labels[box] == label).mean(0) + [b.start for b in box]
        mm = affine[:3, :3] @ centre + affine[:3, 3]
        if np.all((mm > lo) & (mm < hi)):
            keep.append(label)
    if not keep:
        raise RuntimeError("lateral ventricles not found in the MNI152 CSF map")
    return np.isin(labels, keep).astype(np.float32)


def _downsample(a: np.ndarray, v: float, shape: tuple[int, ...], lo: np.ndarray) -> np.ndarray:
    """Anti-aliased sampling at every `v` voxels of a 1 mm array cropped from index `lo`.

    Positions outside the crop take its edge values (zero: the crop has a margin).
    """
    sigma = np.sqrt(v * v - 1.0) / 2.355
    for axis, n in enumerate(shape):  # smooth and sample one axis at a time: less work
        if sigma > 0:
            a = ndi.gaussian_filter1d(a, sigma, axis=axis, truncate=2.5)
        a = fields.resample_axis(a, axis, np.arange(n) * v - lo[axis])
    return a.astype(np.float32)


@functools.lru_cache(maxsize=2)
def load_templates(voxel_size: float = 2.0) -> Templates:
    """Prepare (and cache) the template-space arrays at `voxel_size` mm.

    The grid starts at the MNI152 1 mm grid's first voxel (so 2 mm gives nilearn's
    99 x 117 x 95 grid) and is padded below by NECK_MM for the skull base and neck.
    """
    v = float(voxel_size)
    maps, aff1, lo, full = _load_1mm()
    shape = tuple(int(np.floor((n - 1) / v)) + 1 for n in full)
    pad = int(np.ceil(NECK_MM / v))
    small = {k: np.pad(_downsample(a, v, shape, lo), ((0, 0), (0, 0), (pad, 0)))
             for k, a in maps.items()}
    small["csf"] = np.clip(small["brain"] - small["gm"] - small["wm"], 0.0, 1.0)
    affine = aff1 @ np.diag([v, v, v, 1.0])
    affine[2, 3] -= pad * v
    return _assemble(small, affine, v)


def _assemble(m: dict[str, np.ndarray], affine: np.ndarray, v: float) -> Templates:
    axes = [affine[d, 3] + affine[d, d] * np.arange(n) for d, n in enumerate(m["gm"].shape)]
    mm = np.ix_(*axes)  # open grid: (X,1,1), (1,Y,1), (1,1,Z) MNI mm
    weight = m["brain"] / m["brain"].sum()
    centre = np.array([np.sum(weight * mm[d]) for d in range(3)])
    means = _tissue_means(m)
    dist, neck = _head_distance(m["brain"], mm, v)
    shell = np.flatnonzero((m["brain"] < 0.999) & (dist < SHELL_MM))
    thinning = _thinning(m, mm, v)
    return Templates(
        voxel_size=v, affine=affine, axes=axes, t1=m["t1"] / means[1], gm=m["gm"], wm=m["wm"],
        csf=m["csf"], brain=m["brain"], ventricles=m["ventricles"],
        flow=build_flow(m["ventricles"], v),
        thinning=thinning, head_distance=dist, neck=neck, shell_index=shell,
        gm_index=np.flatnonzero(thinning > 0),
        tissue_means=means / means[1], centre=centre,
    )


def _tissue_means(m: dict[str, np.ndarray]) -> np.ndarray:
    """Least-squares T1 intensity of pure GM, WM and CSF inside the brain, (3,)."""
    inside = m["brain"] > 0.5
    design = np.stack([m["gm"][inside], m["wm"][inside], m["csf"][inside]], axis=1)
    coef, *_ = np.linalg.lstsq(design, m["t1"][inside], rcond=None)
    return coef.astype(np.float32)


def _thinning(m: dict[str, np.ndarray], mm: tuple[np.ndarray, ...], v: float) -> np.ndarray:
    """Where and how fast GM turns into CSF: near sulcal CSF, more frontal and temporal."""
    outside = m["csf"] * (1.0 - m["ventricles"]) + (1.0 - m["brain"])
    near = np.clip(ndi.gaussian_filter(outside, 1.5 / v) * 2.0, 0.0, 1.0)
    x, y, z = mm
    frontal = 1.0 / (1.0 + np.exp(-(y - 10.0) / 12.0))
    temporal = 1.0 / (1.0 + np.exp(-(np.abs(x) - 38.0) / 6.0)) / (1.0 + np.exp((z - 5.0) / 8.0))
    rng = np.random.default_rng(_FIXED_SEED)
    axes = [a.ravel() for a in mm]
    lo = np.array([a[0] for a in axes])
    size = np.array([a[-1] - a[0] for a in axes])
    noise = fields.dct_on_axes(axes, fields.dct_coefficients(rng, 1, 4, 0.2), lo, size)[0]
    regional = np.clip(0.55 + 0.6 * frontal + 0.5 * temporal + noise, 0.3, 1.8)
    return (near * regional * (m["gm"] > 0.01)).astype(np.float32)


def _head_distance(brain: np.ndarray, mm: tuple[np.ndarray, ...],
                   v: float) -> tuple[np.ndarray, np.ndarray]:
    """Distance (mm) to the brain or a neck core below it, and the neck weight (0..1).

    The neck core is an elliptic column under the brainstem whose top is a dome.
    """
    x, y, z = mm
    dome = np.clip(1.0 - ((z + 58.0) / 26.0) ** 2, 0.0, 1.0) * (z > -58.0) + (z <= -58.0)
    core = ((x / 40.0) ** 2 + ((y + 20.0) / 46.0) ** 2) < dome
    in_brain = brain > 0.5
    d_brain = ndi.distance_transform_edt(~in_brain, sampling=v)
    d_neck = ndi.distance_transform_edt(~(core & ~in_brain), sampling=v)
    neck = 1.0 / (1.0 + np.exp(-(d_brain - d_neck - 2.0) / 2.0))
    return np.minimum(d_brain, d_neck).astype(np.float32), neck.astype(np.float32)
