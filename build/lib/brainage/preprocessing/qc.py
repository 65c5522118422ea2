"""Quality control per scan: numbers and flags, written as JSON and summarised in a table.

A flagged scan is still written and listed; nothing is dropped silently. Flags:

======================  =====================================================================
registration_failure    similarity to the template below ``SIMILARITY_MIN``, or the affine
                        scales the template implausibly (< 0.6 or > 1.6 along an axis)
implausible_brain_vol   native brain volume outside ``BRAIN_VOLUME_ML``
truncated_fov           less than ``COVERAGE_MIN`` of the template brain lies inside the scan's
                        field of view
extreme_voxel_size      a voxel side > 3 mm or anisotropy > 3 (absurd sizes are errors)
mask_disagreement       deepbet mask vs registered template mask Dice < ``MASK_DICE_MIN``
nonfinite_values        a few NaN/inf voxels were set to 0
======================  =====================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from brainage.preprocessing.skullstrip import dice

if TYPE_CHECKING:
    import ants

    from brainage.preprocessing.registration import Registration

#: Pearson r between the registered scan and the template inside the template brain mask.
#: Successful IXI registrations (2 mm, 8-bit) score 0.38-0.60; failures score < 0.3.
SIMILARITY_MIN = 0.3
BRAIN_VOLUME_ML: tuple[float, float] = (800.0, 2200.0)
COVERAGE_MIN = 0.98
MASK_DICE_MIN = 0.85

#: Columns of the QC summary table, in order.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "similarity", "brain_volume_ml", "mask_dice_template", "coverage", "affine_det",
    "orientation", "voxel_size_mm", "brain_mean", "brain_sd", "seconds",
)


def similarity(warped: ants.ANTsImage, template: ants.ANTsImage, mask: ants.ANTsImage) -> float:
    """Pearson r of the registered scan and the template over the template brain voxels."""
    m = mask.numpy() > 0.5
    a, b = warped.numpy()[m], template.numpy()[m]
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def coverage(
    native: ants.ANTsImage, reg: Registration, grid_mask: np.ndarray, grid: Any
) -> float:
    """Fraction of the grid brain mask that the native field of view covers (0-1)."""
    from brainage.preprocessing.registration import resample

    ones = native.new_image_like(np.ones(native.shape, dtype=np.float32))
    inside = resample(ones, reg, grid, "linear") > 0.99
    n = int(grid_mask.sum())
    return 1.0 if n == 0 else float((inside & grid_mask).sum()) / n


def intensity_stats(native: np.ndarray, output: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Native robust range and output statistics inside the brain mask."""
    pos = native[native > 0]
    brain = output[mask]
    q = np.percentile(pos, [1, 99]) if pos.size else np.zeros(2)
    return {
        "native_p1": float(q[0]), "native_p99": float(q[1]),
        "brain_mean": float(brain.mean()) if brain.size else float("nan"),
        "brain_sd": float(brain.std()) if brain.size else float("nan"),
        "output_min": float(output.min()), "output_max": float(output.max()),
    }


def flags_for(qc: dict[str, Any], skullstrip: str) -> list[str]:
    """QC flags from the numbers in `qc` (see the module docstring)."""
    flags: list[str] = []
    if qc["similarity"] < SIMILARITY_MIN:
        flags.append("registration_failure")
    lo, hi = BRAIN_VOLUME_ML
    if not lo <= qc["brain_volume_ml"] <= hi:
        flags.append("implausible_brain_volume")
    if qc["coverage"] < COVERAGE_MIN:
        flags.append("truncated_fov")
    if skullstrip == "deepbet" and qc["mask_dice_template"] < MASK_DICE_MIN:
        flags.append("mask_disagreement")
    return flags


def build_qc(
    *, facts: dict[str, Any], reg: Registration, sim: float, native_mask: np.ndarray,
    native_spacing: tuple[float, ...], grid_mask: np.ndarray, template_grid_mask: np.ndarray,
    cover: float, stats: dict[str, float], skullstrip: str, early_flags: list[str],
) -> dict[str, Any]:
    """The QC record of one scan (JSON-ready)."""
    lin = reg.matrix[:3, :3]
    qc: dict[str, Any] = {
        "similarity": round(sim, 4),
        "brain_volume_ml": round(float(native_mask.sum()) * float(np.prod(native_spacing)) / 1e3, 1),
        "mask_dice_template": round(dice(grid_mask, template_grid_mask), 4),
        "coverage": round(cover, 4),
        "affine_det": round(float(np.linalg.det(lin)), 4),
        "affine_scales": [round(float(s), 4) for s in np.linalg.svd(lin, compute_uv=False)],
        "affine_template_to_native": [[round(float(v), 5) for v in row] for row in reg.matrix],
        "intensity": {k: round(v, 4) for k, v in stats.items()},
        "input": facts,
    }
    from brainage.preprocessing.registration import check_matrix

    found = flags_for(qc, skullstrip) + check_matrix(reg.matrix) + list(early_flags)
    qc["flags"] = sorted(set(found))
    return qc


def summary_row(qc: dict[str, Any]) -> dict[str, Any]:
    """One flat row of the QC summary table."""
    return {
        "similarity": qc.get("similarity"),
        "brain_volume_ml": qc.get("brain_volume_ml"),
        "mask_dice_template": qc.get("mask_dice_template"),
        "coverage": qc.get("coverage"),
        "affine_det": qc.get("affine_det"),
        "orientation": qc.get("input", {}).get("orientation"),
        "voxel_size_mm": "x".join(f"{v:g}" for v in qc.get("input", {}).get("voxel_size_mm", [])),
        "brain_mean": qc.get("intensity", {}).get("brain_mean"),
        "brain_sd": qc.get("intensity", {}).get("brain_sd"),
        "seconds": qc.get("seconds", {}).get("total"),
    }
