"""Subject anatomy: inter-subject variability and aging, in template space.

Aging is anatomical only:

* the lateral ventricles widen: a smooth, fold-free flow along the gradient of the
  smoothed ventricle map pushes their walls outward (compressing the tissue around them),
  growing faster than linearly with brain age (see :mod:`.ventricles`);
* the cortex thins: grey matter next to sulcal CSF turns into CSF, at a regionally uneven
  rate (fixed pattern, stronger frontal and temporal, plus a smooth individual pattern).

Tissue intensities never change with age. Inter-subject variability: head size (by sex,
plus individual), a smooth random deformation, the individual ventricle size, thinning
rate and pattern, and the skull thickness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import fields
from brainage.data.simulate.templates import Templates

#: Brain age (years) of the template's anatomy: no thinning, no ventricle change.
REFERENCE_AGE = 20.0
#: Ventricle push (mm^2) per unit of the aging curve; see :func:`ventricle_strength`.
VENTRICLE_PUSH = 60.0
#: Fraction of thinning-susceptible GM lost per 60 years of brain age.
THINNING_RATE = 0.55
#: Frequencies per axis of the DCT deformation and patterns.
DCT_K = 3
#: Box (MNI mm) the subject's DCT deformation spans, centred on the head.
DCT_BOX = np.array([200.0, 240.0, 240.0])
_PROFILE_HEAD = (  # distance from the brain (mm) -> intensity (white matter = 1)
    [0.0, 1.5, 2.5, 4.0, 5.5, 7.0, 8.0, 9.5, 12.0, 13.5, 15.0, 16.5],
    [0.33, 0.28, 0.06, 0.06, 0.45, 0.06, 0.25, 1.15, 1.1, 0.6, 0.5, 0.0],
)
_PROFILE_NECK = (  # distance from the neck core (mm) -> intensity
    [0.0, 2.0, 3.5, 6.0, 7.0, 8.5, 9.5],
    [0.45, 0.45, 1.1, 1.05, 0.6, 0.5, 0.0],
)


@dataclass(frozen=True)
class Anatomy:
    """One subject's anatomy, the same at every session.

    Attributes:
        scale: (3,) head size relative to the template, per axis.
        warp: (3, K, K, K) DCT coefficients (mm) of the smooth deformation.
        pattern: (1, K, K, K) DCT coefficients of the individual thinning pattern.
        ventricle_offset: Added to the ventricle aging curve (individual ventricle size).
        thinning_factor: Multiplies the cortical thinning rate.
        skull_factor: Multiplies the scalp and skull thickness.
    """

    scale: np.ndarray
    warp: np.ndarray
    pattern: np.ndarray
    ventricle_offset: float
    thinning_factor: float
    skull_factor: float

    def summary(self) -> dict[str, float]:
        """Scalar parameters, for the ground-truth table."""
        return {
            "head_scale": float(np.prod(self.scale) ** (1.0 / 3.0)),
            "ventricle_offset": self.ventricle_offset,
            "thinning_factor": self.thinning_factor,
            "skull_factor": self.skull_factor,
        }


#: Mean head size relative to MNI152, whose brain is larger than most adults': 0.92 gives a
#: median brain volume near real adults' (QC's measure: median 1,409 ml, SD 144 ml on the
#: 125 IXI scans; about 1,420 ml simulated).
HEAD_SIZE = 0.92


def draw_anatomy(rng: np.random.Generator, sex: str, variability: float = 1.0) -> Anatomy:
    """Draw a subject's anatomy; males' heads are about 7% larger than females'.

    Brain volume varies by about 10 % (SD) across subjects, as in adults.
    """
    s = float(variability)
    size = HEAD_SIZE * (1.035 if sex == "M" else 0.965) * np.exp(0.02 * s * rng.standard_normal())
    scale = size * np.exp(0.02 * s * rng.standard_normal(3))
    return Anatomy(
        scale=scale,
        warp=fields.dct_coefficients(rng, 3, DCT_K, 2.0 * s),
        pattern=fields.dct_coefficients(rng, 1, DCT_K, 0.15 * s),
        ventricle_offset=float(0.12 * s * rng.standard_normal()),
        thinning_factor=float(np.exp(0.08 * s * rng.standard_normal())),
        skull_factor=float(np.exp(0.1 * s * rng.standard_normal())),
    )


def ventricle_strength(brain_age: float, anatomy: Anatomy) -> float:
    """Ventricle push (mm^2): 0 for the template, grows faster than linearly with age."""
    t = max((brain_age - REFERENCE_AGE) / 60.0, -0.3)
    curve = t + t * t if t > 0 else t
    return VENTRICLE_PUSH * (curve + anatomy.ventricle_offset)


def gm_loss(templates: Templates, anatomy: Anatomy, brain_age: float) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """GM probability turned into CSF by cortical thinning.

    Returns:
        (flat voxel indices (M,), GM lost at them (M,) float32).
    """
    index = templates.gm_index
    t = max(brain_age - REFERENCE_AGE, 0.0) / 60.0 * THINNING_RATE * anatomy.thinning_factor
    if t == 0.0:
        return index, np.zeros(index.size, np.float32)
    lo = templates.centre - DCT_BOX / 2
    pattern = fields.dct_on_axes(templates.axes, anatomy.pattern, lo, DCT_BOX)  # (1, X, Y, Z)
    individual = np.exp(pattern.ravel()[index])
    fraction = np.clip(t * templates.thinning.flat[index] * individual, 0.0, 0.9)
    return index, (fraction * templates.gm.flat[index]).astype(np.float32)


def template_image(templates: Templates, anatomy: Anatomy, brain_age: float) -> np.ndarray:
    """The subject's head in template space, before any deformation: (X, Y, Z) float32.

    Brain: the template T1 with thinned cortex (lost GM takes the CSF intensity).
    Outside: CSF rim, skull with diploe, scalp fat, skin; a neck below the brain.
    """
    image = templates.t1.copy()
    index, loss = gm_loss(templates, anatomy, brain_age)
    means = templates.tissue_means  # GM, WM, CSF
    image.flat[index] += (means[2] - means[0]) * loss
    shell = templates.shell_index
    d = templates.head_distance.flat[shell] / anatomy.skull_factor
    neck = templates.neck.flat[shell]
    value = (1.0 - neck) * np.interp(d, *_PROFILE_HEAD) + neck * np.interp(d, *_PROFILE_NECK)
    image.flat[shell] += (1.0 - templates.brain.flat[shell]) * value.astype(np.float32)
    return image


def age_points(points: np.ndarray, templates: Templates, strength: float) -> np.ndarray:
    """Map template mm to the voxel index of the template anatomy that ages into them.

    Points near the ventricle walls fetch from closer to the ventricles (a flow along the
    gradient of the smoothed ventricle map), so the ventricles look wider.

    Args:
        points: (N, 3) template mm.
        strength: Ventricle push in mm^2 (see :func:`ventricle_strength`).

    Returns:
        (N, 3) float32 voxel indices into the template grid.
    """
    inv = np.linalg.inv(templates.affine)
    vox = (points @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)  # (N, 3)
    return templates.flow.displace(vox, strength) if strength != 0.0 else vox


@dataclass(frozen=True)
class TissueMaps:
    """A subject's aged tissue maps in template space (no head size, warp or pose).

    Attributes:
        gm: (X, Y, Z) grey-matter probability.
        wm: (X, Y, Z) white-matter probability.
        csf: (X, Y, Z) CSF probability.
        ventricles: (X, Y, Z) lateral-ventricle fraction.
        voxel_ml: Volume of one voxel in ml.
    """

    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    ventricles: np.ndarray
    voxel_ml: float

    def volumes(self) -> dict[str, float]:
        """Tissue volumes in ml; ``ventricles`` counts the CSF inside the lateral ventricles."""
        return {
            "gm": float(self.gm.sum() * self.voxel_ml),
            "wm": float(self.wm.sum() * self.voxel_ml),
            "csf": float(self.csf.sum() * self.voxel_ml),
            "ventricles": float((self.ventricles * self.csf).sum() * self.voxel_ml),
        }


def aged_tissue_maps(templates: Templates, anatomy: Anatomy, brain_age: float) -> TissueMaps:
    """The tissue maps that the subject's image is made of, aged to `brain_age`."""
    gm, csf = templates.gm.copy(), templates.csf.copy()
    index, loss = gm_loss(templates, anatomy, brain_age)
    gm.flat[index] -= loss
    csf.flat[index] += loss
    box = templates.flow.bounds()  # only voxels in here move
    shape = tuple(b.stop - b.start for b in box)
    grid = np.indices(shape, dtype=np.float32).reshape(3, -1).T + [b.start for b in box]
    vox = age_points(templates.world(grid), templates, ventricle_strength(brain_age, anatomy))
    maps = []
    for a in (gm, templates.wm, csf, templates.ventricles):
        moved = a.copy()
        moved[box] = ndi.map_coordinates(a, vox.T, order=1).reshape(shape)
        maps.append(moved)
    return TissueMaps(*maps, voxel_ml=templates.voxel_size**3 / 1000.0)
