"""Image-level steps: load and validate, conform, head mask, N4, intensity normalisation.

Registration, resampling and skull stripping live in their own modules. Every problem with
an input image raises :class:`~brainage.errors.BrainAgeError` naming the value, what was
expected and the fix; the cohort runner records it for that scan and carries on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from brainage.data.headers import check_scan
from brainage.data.scan_rules import ABSURD_VOXEL_MM, MIN_VOXELS_PER_AXIS, affine_issues
from brainage.errors import InputError, NotFoundError, one_line

if TYPE_CHECKING:
    import ants
    import nibabel as nib

__all__ = ["ABSURD_VOXEL_MM", "MIN_VOXELS_PER_AXIS", "Conformed", "load_image", "conform",
           "check_voxel_size", "head_mask", "n4", "normalise"]
#: Voxel sizes above this, or an anisotropy ratio above EXTREME_ANISOTROPY, are flagged.
EXTREME_VOXEL_MM = 3.0
EXTREME_ANISOTROPY = 3.0
#: Up to this fraction of non-finite voxels is set to 0 and flagged; more is an error.
MAX_NONFINITE_FRACTION = 0.01


@dataclass
class Conformed:
    """A scan in canonical (RAS+) voxel order, float32, with facts about the original.

    Attributes:
        data: (X, Y, Z) float32 intensities.
        affine: (4, 4) RAS+ voxel-to-world affine of `data`.
        facts: Orientation, voxel size, shape and data facts about the input file.
        flags: QC flags raised while loading (e.g. ``nonfinite_values``).
    """

    data: np.ndarray
    affine: np.ndarray
    facts: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)


def load_image(source: str | os.PathLike[str] | nib.spatialimages.SpatialImage,
               name: str | None = None) -> Any:
    """Open a scan: a NIfTI file, a DICOM folder (converted), or a nibabel image as it is.

    This is the one place a raw scan is opened (prepare, predict and explain all come
    here through :func:`brainage.preprocessing.pipeline.preprocess`). A DICOM folder (or
    a :class:`~brainage.data.dicom.DicomScan` naming its series) is converted with
    dcm2niix into memory (:mod:`brainage.data.dicom_convert`). A NIfTI header is checked
    first by the rules ``cohort check`` uses (:func:`brainage.data.headers.check_scan`):
    a file whose header promises more data than it holds, or an absurd size, is refused
    before any voxel is read.

    Args:
        source: A path, a ``DicomScan``, or a nibabel image (returned as it is).
        name: How messages name the scan (default: the path).

    Raises:
        BrainAgeError: missing, unreadable, truncated or unusable file; a DICOM folder
            with no or an ambiguous T1w series, or one dcm2niix cannot convert.
    """
    import nibabel as nib

    from brainage.data.dicom import DicomScan, is_dicom_folder

    if not isinstance(source, (str, os.PathLike)):
        return source
    if isinstance(source, DicomScan) or is_dicom_folder(source):
        from brainage.data.dicom_convert import load_dicom

        return load_dicom(source, getattr(source, "series", None))
    p = Path(source)
    if p.is_dir():
        raise InputError(f"{p}: a folder with no DICOM file; expected a NIfTI image or a "
                         "folder of DICOM files. Fix: give the scan's NIfTI file or the "
                         "folder of its DICOM series.")
    if not p.is_file():
        raise NotFoundError(f"{p}: image not found. Fix: check the path in the cohort table.")
    check_scan(p, name)
    try:
        return nib.load(p)
    except Exception as exc:  # nibabel raises many types for bad files
        raise InputError(
            f"{p}: could not be read as an image ({type(exc).__name__}: {one_line(exc)}). "
            "Fix: check that the file is a complete NIfTI image."
        ) from exc


def _voxels(img: Any, name: str) -> np.ndarray:
    """The voxel array of `img`; damaged data or too little memory become BrainAgeError."""
    try:
        return np.asanyarray(img.dataobj)
    except MemoryError as exc:
        raise InputError(
            f"{name}: not enough memory to read the voxels (shape {tuple(img.shape)}, "
            f"{img.get_data_dtype()}). Fix: downsample the scan, or free memory (fewer --jobs)."
        ) from exc
    except Exception as exc:  # truncated or corrupt data (EOFError, zlib.error, OSError...)
        raise InputError(
            f"{name}: the voxel data could not be read ({type(exc).__name__}: {one_line(exc)});"
            " expected a complete NIfTI image. Fix: copy or convert the scan again (the file "
            "is cut short or damaged)."
        ) from exc


def _squeeze_to_3d(data: np.ndarray, name: str) -> np.ndarray:
    if data.ndim == 4 and data.shape[3] == 1:
        return data[..., 0]
    if data.ndim == 3:
        return data
    if data.ndim == 4:
        raise InputError(
            f"{name}: image is 4D with {data.shape[3]} volumes, shape {data.shape}; expected "
            "one 3D T1w volume. Fix: extract one volume (e.g. fslroi or nibabel) first."
        )
    raise InputError(
        f"{name}: image is {data.ndim}D, shape {data.shape}; expected a 3D T1w volume. "
        "Fix: give the full 3D scan, not a slice or a multi-dimensional series."
    )


def check_voxel_size(zooms: tuple[float, ...], name: str) -> list[str]:
    """Refuse absurd voxel sizes; return ``["extreme_voxel_size"]`` for merely unusual ones."""
    z = np.asarray(zooms[:3], dtype=float)
    lo, hi = ABSURD_VOXEL_MM
    if not np.all(np.isfinite(z)) or np.any(z < lo) or np.any(z > hi):
        raise InputError(
            f"{name}: voxel size {tuple(round(float(v), 4) for v in z)} mm is absurd; expected "
            f"{lo}-{hi} mm. Fix: repair the header (pixdim / affine) of this image."
        )
    if z.max() > EXTREME_VOXEL_MM or z.max() / z.min() > EXTREME_ANISOTROPY:
        return ["extreme_voxel_size"]
    return []


def _check_values(data: np.ndarray, name: str) -> tuple[np.ndarray, list[str]]:
    finite = np.isfinite(data)
    n_bad = int(data.size - finite.sum())
    flags = []
    if n_bad:
        if n_bad / data.size > MAX_NONFINITE_FRACTION:
            raise InputError(
                f"{name}: {n_bad} of {data.size} voxels are NaN or infinite; expected finite "
                "intensities. Fix: re-export the scan from the scanner or converter."
            )
        data = np.where(finite, data, 0).astype(np.float32)
        flags.append("nonfinite_values")
    lo, hi = float(data.min()), float(data.max())
    if lo == hi:
        what = "empty (all zero)" if hi == 0 else f"constant (every voxel {hi:g})"
        raise InputError(
            f"{name}: image is {what}; expected a T1w scan with contrast. "
            "Fix: check the conversion of this scan or drop it from the cohort."
        )
    return data, flags


def conform(img: Any, name: str = "image") -> Conformed:
    """Reorient to RAS+ voxel order (no resampling), float32, with validation.

    Args:
        img: A nibabel spatial image.
        name: Used in error messages (the file or subject).

    Raises:
        BrainAgeError: not 3D, absurd voxel size, too small, non-finite or constant data.
    """
    import nibabel as nib

    shape = tuple(int(s) for s in img.shape)
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    data = _squeeze_to_3d(_voxels(img, name), name)
    if min(data.shape) < MIN_VOXELS_PER_AXIS:
        raise InputError(
            f"{name}: shape {data.shape} is too small for a head scan; expected at least "
            f"{MIN_VOXELS_PER_AXIS} voxels per axis. Fix: give the full 3D scan."
        )
    flags = check_voxel_size(zooms, name)
    for expected, fix, observed in affine_issues(img.affine):  # else io_orientation raises
        raise InputError(f"{name}: {observed}; expected {expected}. Fix: {fix}.")
    ornt = nib.io_orientation(img.affine)
    canon = nib.orientations.apply_orientation(data, ornt)  # (X, Y, Z) in RAS order
    affine = img.affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    canon, value_flags = _check_values(np.asarray(canon, dtype=np.float32), name)
    facts = {
        "orientation": "".join(nib.aff2axcodes(img.affine)),
        "voxel_size_mm": [round(z, 4) for z in zooms],
        "shape": list(shape),
        "obliquity_deg": round(float(np.degrees(np.max(nib.affines.obliquity(img.affine)))), 3),
        "dtype": str(img.get_data_dtype()),
    }
    return Conformed(np.ascontiguousarray(canon), affine, facts, flags + value_flags)


def head_mask(data: np.ndarray, fraction: float = 0.15) -> np.ndarray:
    """Largest connected foreground component, holes filled: a rough head mask (X, Y, Z)."""
    from scipy import ndimage

    positive = data[data > 0]
    if positive.size == 0:
        raise InputError(
            "image has no positive intensities; expected a magnitude T1w scan. "
            "Fix: check the conversion of this scan."
        )
    fg = data > fraction * np.percentile(positive, 99)
    labels, n = ndimage.label(fg)
    if n == 0:
        raise InputError("no head found in the image (no foreground). Fix: check the scan.")
    sizes = np.bincount(labels.ravel())[1:]
    fg = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(fg)


def n4(
    image: ants.ANTsImage, mask: ants.ANTsImage, params: dict[str, Any]
) -> ants.ANTsImage:
    """N4 bias-field correction inside the head mask at about ``n4_working_mm`` resolution."""
    import ants

    shrink = max(1, int(round(params["n4_working_mm"] / min(image.spacing))))
    return ants.n4_bias_field_correction(
        image, mask=mask, shrink_factor=shrink,
        convergence={"iters": list(params["n4_iterations"]), "tol": 1e-7},
        spline_param=float(params["n4_spline_distance_mm"]),
    )


def normalise(data: np.ndarray, mask: np.ndarray, method: str) -> np.ndarray:
    """Intensity normalisation inside `mask`; background set to 0.

    Args:
        data: (X, Y, Z) intensities on the target grid.
        mask: (X, Y, Z) bool brain mask.
        method: ``"zscore"`` (mean 0, SD 1 over brain voxels), ``"minmax"`` (z-score then
            brain voxels scaled to [0, 1]) or ``"none"``.

    Raises:
        BrainAgeError: the mask is empty or the brain intensities are constant.
    """
    inside = data[mask]
    if inside.size == 0:
        raise InputError(
            "brain mask is empty on the target grid; expected the brain inside the grid. "
            "Fix: check the registration QC for this scan (it probably failed)."
        )
    out = np.zeros_like(data, dtype=np.float32)
    if method == "none":
        out[mask] = inside
        return out
    sd = float(inside.std())
    if sd == 0:
        raise InputError("brain intensities are constant; cannot normalise. Fix: check scan.")
    z = (inside - float(inside.mean())) / sd
    if method == "minmax":
        z = (z - z.min()) / max(float(z.max() - z.min()), 1e-12)
    out[mask] = z
    return out
