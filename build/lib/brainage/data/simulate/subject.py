"""One scan: compose aging, subject warp and pose into one coordinate map, resample once.

Coordinates are computed on a coarse native grid (a node every ~4 mm) through the whole
chain native voxel -> world -> subject -> template -> aged template, then filled in to
every native voxel by separable linear interpolation (the chain is smooth). The subject's
template-space head is then sampled a single time with ``map_coordinates``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import anatomy, fields
from brainage.data.simulate.cohort import (
    ANATOMY,
    SCANNER,
    Subject,
    age_ranges,
    draw_subject,
    subject_rng,
)
from brainage.data.simulate.config import SimulationConfig
from brainage.data.simulate.scanner import (
    Pose,
    Site,
    apply_effects,
    draw_pose,
    native_grid,
    plan_sites,
)
from brainage.data.simulate.templates import Templates, load_templates

#: Spacing (mm) of the coarse grid on which the coordinate chain is evaluated.
FIELD_SPACING_MM = 4.0


@dataclass(frozen=True)
class Scan:
    """A simulated T1w image and what it was made from.

    Attributes:
        data: (X, Y, Z) int16 image on the native grid.
        affine: (4, 4) voxel -> world mm.
        pose: Head pose in the scanner.
        strength: Ventricle push (mm^2) used.
        maps: Template maps asked for (e.g. ``"brain"``, ``"wm"``), resampled to the
            native grid through the same deformation (aging included, thinning not).
    """

    data: np.ndarray
    affine: np.ndarray
    pose: Pose
    strength: float
    maps: dict[str, np.ndarray] = field(default_factory=dict)


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Limit BLAS to one thread, so results do not depend on the thread count."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


def scan_subject(templates: Templates, config: SimulationConfig, subject: Subject, site: Site,
                 session: int = 0, maps: tuple[str, ...] = ()) -> Scan:
    """Simulate `subject`'s scan at `session` (0-based) on `site`.

    Args:
        maps: Names of :class:`Templates` arrays (``brain``, ``gm``, ``wm``, ``csf``,
            ``ventricles``) to resample onto the native grid as well (float32).
    """
    body = anatomy.draw_anatomy(subject_rng(config.seed, subject.index, ANATOMY),
                                subject.sex, config.variability)
    rng = subject_rng(config.seed, subject.index, SCANNER + session)
    brain_age = subject.brain_ages[session]
    pose = draw_pose(rng)
    strength = anatomy.ventricle_strength(brain_age, body)
    with single_thread():
        head = anatomy.template_image(templates, body, brain_age)  # (tX, tY, tZ)
        shape, affine = native_grid(site, templates.centre)
        chain = _coordinate_chain(templates, body, site, pose, strength, shape, affine)
        fine = fields.upsample(chain, shape)  # (4, X, Y, Z): template voxel xyz, log bias
        image = ndi.map_coordinates(head, fine[:3], order=config.interp_order,
                                    prefilter=config.interp_order > 1, mode="constant")
        data = apply_effects(image, fine[3], site, rng)
        extra = {name: ndi.map_coordinates(getattr(templates, name), fine[:3], order=1)
                 for name in maps}
    return Scan(data=data, affine=affine, pose=pose, strength=strength, maps=extra)


def _coordinate_chain(templates: Templates, body: anatomy.Anatomy, site: Site, pose: Pose,
                      strength: float, shape: tuple[int, int, int],
                      affine: np.ndarray) -> np.ndarray:
    """Template voxel coordinates and log bias at coarse native nodes: (4, cx, cy, cz).

    The smooth parts (subject warp, bias) are evaluated on a 4x coarser grid still and
    interpolated; the rigid pose and the ventricle flow at every coarse node.
    """
    step = FIELD_SPACING_MM / float(np.min(site.voxel))
    coarse = fields.coarse_shape(shape, step)
    nodes = _nodes(shape, coarse)  # (N, 3) native voxel indices
    world = nodes @ affine[:3, :3].T + affine[:3, 3]
    rot, c = pose.rotation(), templates.centre
    subject = (world - site.offset - c - pose.shift) @ rot + c  # inverse rigid pose
    smooth = _smooth_fields(templates, body, site, pose, shape, affine, coarse)
    mm = c + (subject - c) / body.scale + smooth[:3].reshape(3, -1).T
    vox = anatomy.age_points(mm.astype(np.float32), templates, strength)  # (N, 3)
    return np.concatenate([vox.T.reshape((3, *coarse)), smooth[3:]]).astype(np.float32)


def _nodes(shape: tuple[int, ...], coarse: tuple[int, ...]) -> np.ndarray:
    """(N, 3) native voxel indices of a coarse grid spanning `shape`."""
    axes = [fields.node_positions(n, c) for n, c in zip(shape, coarse, strict=True)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def _smooth_fields(templates: Templates, body: anatomy.Anatomy, site: Site, pose: Pose,
                   shape: tuple[int, int, int], affine: np.ndarray,
                   coarse: tuple[int, ...]) -> np.ndarray:
    """Subject warp (mm) and log bias on the coarse grid: (4, cx, cy, cz)."""
    sparse = fields.coarse_shape(coarse, 4.0)
    nodes = _nodes(shape, sparse)
    world = nodes @ affine[:3, :3].T + affine[:3, 3]
    rot, c = pose.rotation(), templates.centre
    subject = (world - site.offset - c - pose.shift) @ rot + c
    lo = c - anatomy.DCT_BOX / 2
    warp = fields.dct_at_points(subject, body.warp, lo, anatomy.DCT_BOX)  # (n, 3) mm
    box = np.array(shape, dtype=np.float64)
    bias = fields.dct_at_points(nodes + 0.5, site.bias, np.zeros(3), box)  # (n, 1)
    both = np.concatenate([warp, bias], axis=1).T.reshape((4, *sparse))
    return fields.upsample(both.astype(np.float32), coarse)  # type: ignore[arg-type]


def scan_truth(subject: Subject, site: Site, session: int, scan: Scan,
               body: anatomy.Anatomy) -> dict[str, Any]:
    """Ground-truth row of one scan."""
    row: dict[str, Any] = {
        "participant_id": subject.participant_id,
        "session": subject.sessions[session],
        "age": subject.ages[session],
        "brain_age": round(subject.brain_ages[session], 3),
        "gap": round(subject.brain_ages[session] - subject.ages[session], 3),
        "group": subject.group, "sex": subject.sex, "site": site.name,
        "ventricle_strength": round(scan.strength, 3),
    }
    row.update({k: round(v, 4) for k, v in body.summary().items()})
    row.update({f"rotation_{a}": round(float(x), 3) for a, x in zip("xyz", scan.pose.angles,
                                                                   strict=True)})
    row.update({f"shift_{a}": round(float(x), 3) for a, x in zip("xyz", scan.pose.shift,
                                                                strict=True)})
    return row


def simulate_scan(config: SimulationConfig, index: int, session: int = 0,
                  maps: tuple[str, ...] = ()) -> Scan:
    """Simulate one scan without writing anything (handy for tests and notebooks)."""
    config.validate()
    subject = plan_cohort_subject(config, index)
    site = plan_sites(config)[subject.site]
    templates = load_templates(config.voxel_size)
    return scan_subject(templates, config, subject, site, session, maps)


def subject_tissue_maps(config: SimulationConfig, index: int,
                        session: int = 0) -> anatomy.TissueMaps:
    """Subject `index`'s aged tissue maps in template space (before warp, pose, scanner)."""
    config.validate()
    subject = plan_cohort_subject(config, index)
    body = anatomy.draw_anatomy(subject_rng(config.seed, index, ANATOMY), subject.sex,
                                config.variability)
    templates = load_templates(config.voxel_size)
    with single_thread():
        return anatomy.aged_tissue_maps(templates, body, subject.brain_ages[session])


def plan_cohort_subject(config: SimulationConfig, index: int) -> Subject:
    """Subject `index` of the cohort `config` describes."""
    if not 0 <= index < config.n:
        raise IndexError(f"subject index {index} out of range 0..{config.n - 1}")
    return draw_subject(config, index, age_ranges(config))
