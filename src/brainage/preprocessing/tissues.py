"""Grey matter, white matter and CSF probability maps on the target grid, pip-only.

The segmentation is a three-class Gaussian mixture of the bias-corrected intensities inside
the brain mask, with spatial priors made from nilearn's bundled MNI152 2009a GM and WM maps
(CSF = the rest of the brain). It is the model of ANTs' Atropos (likelihood times a blend of
the class proportions and the spatial prior, no Markov random field), run in numpy on the
grid: ``ants.atropos`` on the same grid took 2.2-3.7 s per scan on 2 cores, almost all of
it fixed overhead, against about 0.2 s here (docs/preprocessing.md).

The maps are probabilities ("unmodulated"). A modulated map (tissue volume per template
voxel, VBM-style) multiplies them by the Jacobian determinant of the template -> native
transform: the affine's determinant (recorded in QC as ``affine_det``) times, with
``--nonlinear``, the SyN warp's, stored as a log-Jacobian channel (tensor-based
morphometry). :func:`modulated` does the product.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from brainage.preprocessing.antsio import grid_image, to_ants

if TYPE_CHECKING:
    from brainage.preprocessing.grids import Grid
    from brainage.preprocessing.registration import Registration

#: Channels of a tissue array, in order (``logjac`` only with nonlinear registration).
TISSUES = ("GM", "WM", "CSF")
LOGJAC = "logjac"
#: Plausible fractions of the brain-mask volume (adults; flags outside).
FRACTION_RANGES = {"GM": (0.28, 0.65), "WM": (0.22, 0.58), "CSF": (0.02, 0.35)}


@lru_cache(maxsize=4)
def _priors_cached(grid: Grid) -> np.ndarray:
    import ants
    from nilearn.datasets import load_mni152_gm_template, load_mni152_wm_template

    res = 1 if min(grid.spacing) < 2 else 2
    out = []
    for loader in (load_mni152_gm_template, load_mni152_wm_template):
        img = loader(resolution=res)
        moved = ants.resample_image_to_target(
            to_ants(img.get_fdata(dtype=np.float32), img.affine), grid_image(grid),
            interp_type="linear")
        out.append(np.clip(moved.numpy(), 0.0, 1.0))
    gm, wm = out
    total = np.maximum(gm + wm, 1.0)  # the two maps overlap slightly at their edges
    gm, wm = gm / total, wm / total
    priors = np.stack([gm, wm, 1.0 - gm - wm]).astype(np.float32)  # (3, X, Y, Z)
    priors.setflags(write=False)
    return priors


def template_priors(grid: Grid) -> np.ndarray:
    """GM, WM and CSF prior probabilities on `grid`: (3, X, Y, Z) float32, read-only."""
    return _priors_cached(grid)


def segment(data: np.ndarray, mask: np.ndarray, priors: np.ndarray,
            params: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """Posterior GM, WM and CSF probabilities inside `mask`.

    Args:
        data: (X, Y, Z) bias-corrected intensities on the grid (any scale).
        mask: (X, Y, Z) bool brain mask.
        priors: (3, X, Y, Z) GM, WM, CSF priors (:func:`template_priors`).
        params: Spec parameters ``tissue_prior_weight`` (0 = the priors only start the
            fit, 1 = full spatial prior) and ``tissue_iterations``.

    Returns:
        ((3, X, Y, Z) float32 probabilities summing to 1 in the mask and 0 outside,
        the fitted class means and SDs as a QC record).
    """
    x = data[mask].astype(np.float64)  # (n,)
    if x.size < 30 or not np.isfinite(x).all():  # no brain to segment: QC flags it
        return np.zeros((3, *mask.shape), dtype=np.float32), {"mean": [None] * 3,
                                                              "sd": [None] * 3}
    scale = float(np.percentile(x, 99)) or 1.0
    x = x / scale
    prior = priors[:, mask].astype(np.float64) + 1e-3  # (3, n)
    prior /= prior.sum(axis=0, keepdims=True)
    weight = float(params["tissue_prior_weight"])
    post = prior.copy()
    for _ in range(int(params["tissue_iterations"])):
        mass = post.sum(axis=1) + 1e-9  # (3,)
        mean = (post @ x) / mass
        sd = np.sqrt((post @ (x * x)) / mass - mean**2).clip(1e-3)
        mix = ((1.0 - weight) * (mass / mass.sum())[:, None] + weight * prior)  # (3, n)
        like = np.exp(-0.5 * ((x[None] - mean[:, None]) / sd[:, None]) ** 2) / sd[:, None]
        post = mix * like + 1e-12
        post /= post.sum(axis=0, keepdims=True)
    out = np.zeros((3, *mask.shape), dtype=np.float32)
    out[:, mask] = post
    fit = {"mean": [round(float(m * scale), 4) for m in mean],
           "sd": [round(float(s * scale), 4) for s in sd]}
    return out, fit


def log_jacobian(reg: Registration, grid: Grid) -> np.ndarray | None:
    """Log-determinant of the SyN warp's Jacobian on `grid` (None for affine only).

    The warp maps template points to native ones, so > 0 where the subject's anatomy is
    larger than the template's (the affine's scaling is not included; see
    :func:`modulated`).
    """
    import ants

    if not reg.extras.get("syn"):
        return None
    warp = ants.image_read(reg.fwd[0])
    domain = ants.image_clone(warp.split_channels()[0]) if warp.components > 1 else warp
    logjac = ants.create_jacobian_determinant_image(domain, reg.fwd[0], do_log=True)
    on_grid = ants.resample_image_to_target(logjac, grid_image(grid), interp_type="linear")
    return np.nan_to_num(on_grid.numpy().astype(np.float32))


def modulated(probs: np.ndarray, affine_det: float,
              logjac: np.ndarray | None = None) -> np.ndarray:
    """Tissue volume per template voxel (VBM modulation): probs x Jacobian determinant.

    Args:
        probs: (C, X, Y, Z) probabilities.
        affine_det: Determinant of the template -> native affine (QC ``affine_det``).
        logjac: (X, Y, Z) log-Jacobian of the nonlinear warp, or None.
    """
    det = np.float32(affine_det)
    if logjac is not None:
        det = det * np.exp(logjac).astype(np.float32)
    return (probs * det).astype(np.float32)


def tissue_qc(probs: np.ndarray, fit: dict[str, Any], voxel_ml: float,
              affine_det: float) -> tuple[dict[str, Any], list[str]]:
    """Tissue volumes (ml, native space), fractions and flags of one scan."""
    volumes = {name: float(probs[i].sum()) * voxel_ml * affine_det
               for i, name in enumerate(TISSUES)}
    total = sum(volumes.values())
    fractions = {k: (v / total if total else 0.0) for k, v in volumes.items()}
    flags = []
    if any(not lo <= fractions[k] <= hi for k, (lo, hi) in FRACTION_RANGES.items()):
        flags.append("implausible_tissue_volumes")
    mean = fit["mean"]
    if None in mean or not mean[2] < mean[0] < mean[1]:  # T1: CSF < GM < WM
        flags.append("tissue_contrast_unusual")
    record = {f"{k.lower()}_ml": round(v, 1) for k, v in volumes.items()}
    record.update({f"{k.lower()}_fraction": round(v, 4) for k, v in fractions.items()})
    record["brain_tissue_ml"] = round(total, 1)
    record["class_mean"], record["class_sd"] = fit["mean"], fit["sd"]
    return record, flags
