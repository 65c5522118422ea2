"""The geometry a usable head scan has, whatever its file format: one 3D volume, enough
voxels per axis but not absurdly many, sane voxel sizes, an affine with three independent axes.

Each rule returns *issues* (expected, fix, observed); :func:`brainage.data.headers.issue_problems`
turns them into :class:`~brainage.errors.Problem` once it is known where the path was listed.
"""

from __future__ import annotations

import math

import nibabel as nib
import numpy as np

from brainage.errors import one_line

#: (expected, fix, observed) for one image.
Issue = tuple[str, str, str | None]
#: Voxel sizes (mm) outside this range are refused as absurd.
ABSURD_VOXEL_MM: tuple[float, float] = (0.1, 10.0)
#: A head scan has at least this many voxels along every axis.
MIN_VOXELS_PER_AXIS = 8
#: Most voxels a header may promise: 2**28 (e.g. 645**3); a 0.5 mm whole-head T1w has
#: about 10**8, and the pipeline holds several float32 copies of the scan.
MAX_VOXELS = 2**28


def shape_issues(shape: tuple[int, ...]) -> list[Issue]:
    """A 3D image is expected; extra dimensions must hold a single volume."""
    if len(shape) < 3 or 0 in shape:
        return [("a 3D image", "use a 3D T1-weighted volume",
                 f"{len(shape)}D image, shape {shape}")]
    volumes = math.prod(shape[3:])
    if volumes > 1:
        return [("a 3D image (a 4D image must hold a single volume)",
                 "keep one volume per file (e.g. split it with nibabel's four_to_three) "
                 "and list each volume as its own run",
                 f"{len(shape)}D with {volumes} volumes, shape {shape}")]
    return []


def min_size_issues(shape: tuple[int, ...]) -> list[Issue]:
    """A head scan has at least MIN_VOXELS_PER_AXIS voxels along each spatial axis."""
    if min(shape[:3]) >= MIN_VOXELS_PER_AXIS:
        return []
    return [(f"at least {MIN_VOXELS_PER_AXIS} voxels per axis",
             "give the full 3D scan, not a slab or a thumbnail",
             f"shape {shape[:3]} is too small for a head scan")]


def max_size_issues(shape: tuple[int, ...]) -> list[Issue]:
    """At most MAX_VOXELS voxels: more cannot be preprocessed in memory."""
    n = math.prod(shape)
    if n <= MAX_VOXELS:
        return []
    return [(f"at most {MAX_VOXELS:,} voxels (a 0.5 mm whole-head T1w has about 100 million)",
             "downsample or crop the scan (e.g. to 1 mm) first, or repair a damaged header",
             f"shape {shape}: {n:,} voxels")]


def affine_issues(affine: np.ndarray) -> list[Issue]:
    """The affine must be finite and map the three voxel axes to three distinct directions
    (else no orientation can be read from it, and reorienting to RAS+ fails)."""
    a = np.asarray(affine, dtype=float)
    ok = a.shape == (4, 4) and bool(np.all(np.isfinite(a)))
    if ok:
        try:
            ok = not np.isnan(nib.io_orientation(a)).any()
        except Exception:  # nibabel's OrientationError, numpy's LinAlgError
            ok = False
    if ok:
        return []
    rows = np.array2string(a[:3] if a.shape == (4, 4) else a, precision=3, separator=",")
    return [("a finite voxel-to-world affine with three independent axes (sform or qform)",
             "repair the header's sform/qform (e.g. re-convert the scan from DICOM)",
             f"unusable affine {one_line(rows)}")]


def zoom_issues(zooms: tuple[float, ...]) -> list[Issue]:
    """Voxel sizes must be finite and within ABSURD_VOXEL_MM."""
    lo, hi = ABSURD_VOXEL_MM
    if len(zooms) == 3 and all(math.isfinite(z) and lo <= z <= hi for z in zooms):
        return []
    return [(f"finite, positive voxel sizes of {lo:g}-{hi:g} mm",
             "repair the header's pixdim, e.g. re-convert the scan from DICOM",
             f"absurd voxel sizes {tuple(round(z, 4) for z in zooms)} mm")]
