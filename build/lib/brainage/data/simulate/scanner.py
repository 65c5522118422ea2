"""Acquisition: sites, head pose, the native field of view, and scanner effects.

A site fixes the voxel grid (orientation, voxel size, field of view) and the image
effects: gamma (contrast), intensity scale, a smooth multiplicative bias field, blur and
Rician noise. Effects are applied to the whole image, never as a function of age.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import fields
from brainage.data.simulate.cohort import age_ranges, site_rng
from brainage.data.simulate.config import SimulationConfig

#: Voxel-axis orientation codes the sites cycle through (axial, sagittal, coronal).
ORIENTATIONS = ("LAS", "RAS", "LPS", "PIR", "ASL", "RSP")
_DIRECTIONS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0),
               "S": (0, 0, 1), "I": (0, 0, -1)}
#: Field of view (mm) along world x, y, z, before the site's enlargement.
_FOV = np.array([205.0, 255.0, 235.0])
#: Top of the field of view (subject mm, MNI-like): above the scalp.
_FOV_TOP = 122.0


@dataclass(frozen=True)
class Site:
    """One acquisition site.

    Attributes:
        index: 0-based site index.
        name: Label written to participants.tsv.
        orientation: Voxel-axis orientation code, e.g. ``"LAS"``.
        voxel: (3,) voxel size (mm) along the voxel axes; the third is the slice axis.
        fov: (3,) field of view (mm) along world x, y, z.
        offset: (3,) world position (mm) of the subject frame's origin.
        age_range: Chronological age range of first sessions.
        gamma: Intensity exponent (contrast).
        scale: Intensity of white matter in the written image.
        noise: Rician noise SD relative to white matter.
        blur: Gaussian blur SD in voxels.
        bias: (1, K, K, K) DCT coefficients of the log bias field.
    """

    index: int
    name: str
    orientation: str
    voxel: np.ndarray
    fov: np.ndarray
    offset: np.ndarray
    age_range: tuple[float, float]
    gamma: float
    scale: float
    noise: float
    blur: float
    bias: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for the ground-truth JSON."""
        return {
            "site": self.name, "orientation": self.orientation,
            "voxel_size_mm": [round(float(x), 4) for x in self.voxel],
            "field_of_view_mm": [round(float(x), 2) for x in self.fov],
            "world_offset_mm": [round(float(x), 2) for x in self.offset],
            "age_range": [round(a, 2) for a in self.age_range],
            "gamma": self.gamma, "intensity_scale": self.scale, "noise_sd": self.noise,
            "blur_sd_voxels": self.blur, "bias_dct": np.round(self.bias, 5).tolist(),
        }


def draw_site(config: SimulationConfig, index: int, age_range: tuple[float, float]) -> Site:
    """Draw site `index`'s grid and effects (scaled by ``config.site_effects`` and by the
    per-effect ``site_contrast``, ``site_intensity``, ``site_noise`` and ``site_bias``)."""
    rng = site_rng(config.seed, index)
    e = config.site_effects
    u = rng.uniform(size=8)
    slice_factor = 1.0 + 0.3 * min(e, 1.0) * u[0]
    return Site(
        index=index, name=f"S{index + 1}", orientation=ORIENTATIONS[index % len(ORIENTATIONS)],
        voxel=config.voxel_size * np.array([1.0, 1.0, slice_factor]),
        fov=_FOV + 20.0 * u[1:4], offset=rng.normal(0.0, 15.0, 3),
        age_range=age_range,
        gamma=float(np.exp(0.15 * e * config.site_contrast * (2 * u[4] - 1))),
        scale=_intensity_scale(e, config.site_intensity, u[5]),
        noise=float(e * config.site_noise * (0.01 + 0.025 * u[6])), blur=float(e * 0.6 * u[7]),
        bias=fields.dct_coefficients(rng, 1, 3, 0.12 * e * config.site_bias),
    )


def _intensity_scale(effects: float, spread: float, u: float) -> float:
    """White-matter intensity ``1200 · 4^(spread·(u − 1/2))``; 1000 without site effects.

    Written so that ``spread`` 1 gives bit for bit the former ``exp(log 600 + log 4 · u)``.
    """
    if effects == 0:
        return 1000.0
    return float(np.exp(np.log(600.0 * 2.0 ** (1.0 - spread)) + np.log(4.0) * spread * u))


def plan_sites(config: SimulationConfig) -> list[Site]:
    """All sites of the cohort."""
    ranges = age_ranges(config)
    return [draw_site(config, j, ranges[j]) for j in range(config.sites)]


@dataclass(frozen=True)
class Pose:
    """Rigid placement of the head in the scanner.

    Attributes:
        angles: (3,) rotations (degrees) about x, y, z.
        shift: (3,) translation (mm).
    """

    angles: np.ndarray
    shift: np.ndarray

    def rotation(self) -> np.ndarray:
        """(3, 3) rotation matrix, ``Rz @ Ry @ Rx``."""
        a, b, c = np.deg2rad(self.angles)
        rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
        rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
        return rz @ ry @ rx


def draw_pose(rng: np.random.Generator) -> Pose:
    """Random head pose: mostly pitch (about x), a little roll and yaw, a few mm of shift."""
    angles = np.clip(rng.normal(0.0, [8.0, 4.0, 4.0]), -20.0, 20.0)
    return Pose(angles=angles, shift=np.clip(rng.normal(0.0, 6.0, 3), -12.0, 12.0))


def native_grid(site: Site, centre: np.ndarray) -> tuple[tuple[int, int, int], np.ndarray]:
    """The site's voxel grid.

    Args:
        site: The site.
        centre: (3,) subject-space centre of the head (template mm).

    Returns:
        (shape, (4, 4) affine voxel -> world mm).
    """
    axes = np.array([_DIRECTIONS[c] for c in site.orientation], dtype=np.float64).T  # (3, 3)
    world_axis = np.argmax(np.abs(axes), axis=0)  # world axis of each voxel axis
    shape = tuple(int(np.ceil(site.fov[w] / site.voxel[i])) for i, w in enumerate(world_axis))
    middle = np.array([centre[0], centre[1] + 5.0, _FOV_TOP - site.fov[2] / 2]) + site.offset
    affine = np.eye(4)
    affine[:3, :3] = axes * site.voxel
    affine[:3, 3] = middle - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return shape, affine  # type: ignore[return-value]


def apply_effects(image: np.ndarray, log_bias: np.ndarray, site: Site,
                  rng: np.random.Generator) -> np.ndarray:
    """Scanner effects on a (X, Y, Z) float32 image whose white matter is about 1.

    Order: gamma, bias field, blur, Rician noise, intensity scale; int16 result.
    """
    out = np.log(np.maximum(image, np.float32(1e-6)))  # image ** gamma * exp(log_bias)
    out *= np.float32(site.gamma)
    out += log_bias
    np.exp(out, out=out)
    if site.blur > 0.05:
        out = ndi.gaussian_filter(out, site.blur, truncate=2.5)
    if site.noise > 0:
        sd = np.float32(site.noise)
        real = out + sd * rng.standard_normal(out.shape, dtype=np.float32)
        imag = sd * rng.standard_normal(out.shape, dtype=np.float32)
        out = np.sqrt(real * real + imag * imag)
    out *= np.float32(site.scale)
    return np.clip(np.rint(out), 0, np.iinfo(np.int16).max).astype(np.int16)
