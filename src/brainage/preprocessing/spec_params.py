"""The numbers and libraries a :class:`~brainage.preprocessing.spec.PreprocessingSpec`
records: every tunable parameter with its default, and the installed versions of the
libraries that compute the outputs (both are hashed with the spec)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

#: Every tunable number. Changing one changes the hash.
DEFAULT_PARAMS: dict[str, Any] = {
    "template_resolution_mm": 2,  # template used as the registration target
    "template_mask_threshold": 0.2,  # nilearn brain mask = template T1 > threshold
    "mask_threshold": 0.5,  # a linearly resampled mask is brain where > threshold
    "foreground_fraction": 0.15,  # head = voxels > fraction * 99th percentile
    "n4_working_mm": 8.0,  # N4 runs at about this resolution (shrink factor)
    "n4_spline_distance_mm": 200.0,
    "n4_iterations": [50, 50, 50, 50],
    "init_scalp_mm": 10.0,  # vertex of the head lies this far above the brain's top
    "init_slab_mm": 60.0,  # x/y centre from the top slab of this depth
    "moving_mask_depth_mm": 180.0,  # registration ignores the head below vertex - depth
    "affine_metric": "mattes",
    "affine_bins": 32,
    "affine_coarse_iterations": [500, 250],  # dense metric sampling at 8 and 4 mm
    "affine_coarse_shrink": [4, 2],
    "affine_coarse_sigmas": [2, 1],
    "affine_coarse_sampling": 1.0,
    "affine_fine_iterations": [100],  # sparse sampling at full resolution
    "affine_fine_shrink": [1],
    "affine_fine_sigmas": [0],
    "affine_fine_sampling": 0.2,
    "syn_iterations": [40, 20, 0],
    "syn_metric": "CC",
    "interpolation": "linear",
    "random_seed": 20261122,
    "deepbet_threshold": 0.5,
    "deepbet_shape": 256,
    "cache_dtype": "float16",
    "mask_grow_mm": 2.0,  # skullstrip 'refined': grow the template mask this far ...
    "mask_grow_threshold": 0.1,  # ... into voxels above csf + this * (wm - csf)
    "tissue_prior_weight": 0.2,  # tissue maps: 0 = priors only start the fit, 1 = full prior
    "tissue_iterations": 15,
}
_LIBRARIES = ("brainage", "antspyx", "nilearn", "nibabel", "numpy", "scipy")
_DEEPBET_LIBRARIES = ("deepbet", "torch")


def library_versions(skullstrip: str = "template") -> dict[str, str]:
    """Installed versions of the libraries whose numbers end up in the outputs."""
    names = _LIBRARIES + (_DEEPBET_LIBRARIES if skullstrip == "deepbet" else ())
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
