"""Registration of a whole-head scan to the (skull-stripped) MNI152 template, and resampling.

The template has no skull, so a plain affine fit shrinks the head into the brain. What
works (measured on IXI, see docs/preprocessing.md):

1. an initial translation that puts the top of the head ``init_scalp_mm`` above the top of
   the template brain and aligns the x/y centres of the top slabs (or, with a native brain
   mask, the brain centroids);
2. an affine fit (Mattes MI) whose metric is restricted to the template *brain* mask and to
   the head above ``vertex - moving_mask_depth_mm`` (with a native brain mask instead: the
   skull-stripped scan, no masks), in two stages: dense sampling at 8 and 4 mm, then sparse
   sampling at full resolution;
3. optionally SyN on the skull-stripped scan.

Transforms are ANTs files in a per-scan temporary folder; :func:`resample` composes them
once from native space to the target grid (one interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainage.errors import InputError
from brainage.preprocessing.antsio import ants_seed, grid_image

if TYPE_CHECKING:
    import ants

    from brainage.preprocessing.grids import Grid

_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Registration:
    """Result of registering one scan to the template.

    Attributes:
        fwd: ANTs transform files, template/grid space -> native (for resampling the scan).
        inv: Transform files, native -> template space (for carrying masks back).
        inv_flags: ``whichtoinvert`` for `inv`.
        warped: The scan resampled on the template grid (for QC similarity).
        matrix: (4, 4) RAS+ affine part, template world point -> native world point.
    """

    fwd: list[str]
    inv: list[str]
    inv_flags: list[bool]
    warped: Any
    matrix: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)


def read_affine(path: str) -> np.ndarray:
    """(4, 4) RAS+ matrix of an ANTs affine ``.mat`` file (fixed point -> moving point)."""
    import ants

    tx = ants.read_transform(path)
    p = np.asarray(tx.parameters, dtype=np.float64)
    centre = np.asarray(tx.fixed_parameters, dtype=np.float64)
    lin, trans = p[:9].reshape(3, 3), p[9:12]
    m = np.eye(4)
    m[:3, :3] = lin
    m[:3, 3] = trans + centre - lin @ centre  # y = A (x - c) + t + c, LPS
    return _FLIP @ m @ _FLIP


def write_translation(t_ras: np.ndarray, path: Path) -> str:
    """Write an ANTs affine file translating template points by `t_ras` (mm, RAS+)."""
    import ants

    t_lps = np.asarray(t_ras, dtype=float) * np.array([-1.0, -1.0, 1.0])
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=t_lps.tolist()
    )
    ants.write_transform(tx, str(path))
    return str(path)


def _world(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    ijk = np.argwhere(mask)  # (N, 3)
    return ijk @ affine[:3, :3].T + affine[:3, 3]  # (N, 3) world mm


def initial_translation(
    head: np.ndarray, affine: np.ndarray, template_brain: np.ndarray,
    template_affine: np.ndarray, params: dict[str, Any],
) -> np.ndarray:
    """Translation (RAS+, mm) mapping template points onto the head: vertex + top-slab centre.

    Args:
        head: (X, Y, Z) bool head mask in native canonical space.
        affine: Its RAS+ affine.
        template_brain: (X', Y', Z') bool template brain mask.
        template_affine: Its affine.
        params: Spec parameters (``init_scalp_mm``, ``init_slab_mm``).
    """
    slab = float(params["init_slab_mm"])

    def top_and_centre(xyz: np.ndarray) -> tuple[float, np.ndarray]:
        top = float(xyz[:, 2].max())
        return top, xyz[xyz[:, 2] > top - slab, :2].mean(axis=0)

    h_top, h_xy = top_and_centre(_world(head, affine))
    t_top, t_xy = top_and_centre(_world(template_brain, template_affine))
    dz = (h_top - float(params["init_scalp_mm"])) - t_top
    return np.array([h_xy[0] - t_xy[0], h_xy[1] - t_xy[1], dz])


def centroid_translation(
    brain: np.ndarray, affine: np.ndarray, template_brain: np.ndarray,
    template_affine: np.ndarray,
) -> np.ndarray:
    """Translation (RAS+, mm) aligning the centroid of a native brain mask with the template's."""
    return _world(brain, affine).mean(axis=0) - _world(template_brain, template_affine).mean(axis=0)


def moving_slab_mask(head: np.ndarray, affine: np.ndarray, depth_mm: float) -> np.ndarray:
    """(X, Y, Z) float mask of everything above ``vertex - depth_mm`` (drops neck and below)."""
    top = float(_world(head, affine)[:, 2].max())
    ii, jj, kk = np.meshgrid(*[np.arange(n) for n in head.shape], indexing="ij", sparse=True)
    z = affine[2, 0] * ii + affine[2, 1] * jj + affine[2, 2] * kk + affine[2, 3]  # world z
    return (z > top - depth_mm).astype(np.float32)


def register(
    moving: ants.ANTsImage, fixed: ants.ANTsImage, init_file: str, params: dict[str, Any],
    workdir: Path, *, stage: str, fixed_mask: ants.ANTsImage | None = None,
    moving_mask: ants.ANTsImage | None = None,
) -> Registration:
    """One affine stage (``coarse`` or ``fine``) of `moving` (native) onto `fixed` (template).

    ``coarse`` samples the metric densely at 8 and 4 mm (stable: sparse random samples
    there made a few scans fall into a wrong optimum, differently from run to run);
    ``fine`` refines at full resolution with sparse samples. The result includes
    `init_file` (ANTs collapses the transforms into one affine).

    Raises:
        BrainAgeError: ANTs failed.
    """
    import ants

    key = f"affine_{stage}_"
    try:
        with ants_seed(int(params["random_seed"])):
            out = ants.registration(
                fixed, moving, "Affine", initial_transform=[init_file], mask=fixed_mask,
                moving_mask=moving_mask, mask_all_stages=True,
                aff_metric=params["affine_metric"], aff_sampling=int(params["affine_bins"]),
                aff_random_sampling_rate=float(params[key + "sampling"]),
                aff_iterations=tuple(params[key + "iterations"]),
                aff_shrink_factors=tuple(params[key + "shrink"]),
                aff_smoothing_sigmas=tuple(params[key + "sigmas"]),
                outprefix=str(workdir / f"{stage}_"),
            )
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"affine registration to the template failed ({exc}). Fix: check the scan's "
            "header orientation and field of view (QC JSON) or drop the scan."
        ) from exc
    fwd = list(out["fwdtransforms"])
    return Registration(fwd=fwd, inv=fwd, inv_flags=[True], warped=out["warpedmovout"],
                        matrix=read_affine(fwd[0]))


def add_syn(
    reg: Registration, moving_brain: ants.ANTsImage, fixed: ants.ANTsImage,
    params: dict[str, Any], workdir: Path,
) -> Registration:
    """Refine an affine registration with SyN on the skull-stripped scan (TSAN-style inputs).

    The moving image is the scan times its brain mask (the affine template mask or
    deepbet's), so the deformation matches brain to brain (the template has no skull).
    """
    import ants

    metric = str(params["syn_metric"])
    try:
        with ants_seed(int(params["random_seed"])):
            out = ants.registration(
                fixed, moving_brain, "SyNOnly", initial_transform=reg.fwd, syn_metric=metric,
                syn_sampling=2 if metric.upper() == "CC" else 32,
                reg_iterations=tuple(params["syn_iterations"]), outprefix=str(workdir / "syn_"),
            )
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"nonlinear (SyN) registration failed ({exc}).") from exc
    warp = [f for f in out["fwdtransforms"] if f.endswith("Warp.nii.gz")]
    inv_warp = [f for f in out["invtransforms"] if f.endswith("InverseWarp.nii.gz")]
    if not warp or not inv_warp:
        raise InputError("SyN registration wrote no warp field; cannot continue.")
    return Registration(
        fwd=[warp[0], *reg.fwd], inv=[*reg.fwd, inv_warp[0]], inv_flags=[True, False],
        warped=out["warpedmovout"], matrix=reg.matrix, extras={"syn": True},
    )


def resample(
    native: ants.ANTsImage, reg: Registration, grid: Grid, interpolator: str = "linear"
) -> np.ndarray:
    """The native image on `grid` through the composed transforms: (X, Y, Z) float32."""
    import ants

    out = ants.apply_transforms(
        grid_image(grid), native, reg.fwd, interpolator=interpolator, defaultvalue=0
    )
    return out.numpy().astype(np.float32)


def to_native(
    image: ants.ANTsImage, native: ants.ANTsImage, reg: Registration,
    interpolator: str = "linear",
) -> ants.ANTsImage:
    """Carry an image in template (MNI) space back onto the native grid."""
    import ants

    return ants.apply_transforms(
        native, image, reg.inv, whichtoinvert=reg.inv_flags, interpolator=interpolator,
        defaultvalue=0,
    )


def check_matrix(matrix: np.ndarray) -> list[str]:
    """``["registration_failure"]`` when the affine scales implausibly (or is singular)."""
    lin = matrix[:3, :3]
    det = float(np.linalg.det(lin))
    scales = np.linalg.svd(lin, compute_uv=False)
    if not np.isfinite(det) or det <= 0 or scales.min() < 0.6 or scales.max() > 1.6:
        return ["registration_failure"]
    return []
