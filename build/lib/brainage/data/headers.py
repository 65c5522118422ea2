"""Header-level checks of image files: NIfTI headers parsed raw, ``.npy`` memory-mapped.

Nothing here reads voxel data: a NIfTI file is opened for its first 540 bytes only (the
header; gzip decompresses just that much), and ``np.load(..., mmap_mode="r")`` maps an
array without reading it. Each check returns *issues* (expected, fix, observed);
:func:`issue_problems` turns them into :class:`~brainage.errors.Problem` once it is known
where the path was listed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.errors import Problem

#: (expected, fix, observed) for one image.
Issue = tuple[str, str, str | None]
_NIFTI1_SIZE, _NIFTI2_SIZE = 348, 540
_NIFTI_MAGIC = (b"n+1", b"ni1", b"n+2", b"ni2")


def read_head(path: Path, size: int) -> bytes:
    """The first `size` bytes of a file, decompressed if it is gzipped (``.gz``).

    Only as much of a ``.gz`` file is read and inflated as those bytes need (a few KiB),
    which is about twice as fast as :func:`gzip.open` (it reads 128 KiB at a time).

    Raises:
        OSError: unreadable. zlib.error: not gzip data.
    """
    with open(path, "rb") as fobj:
        if not path.name.endswith(".gz"):
            return fobj.read(size)
        inflate = zlib.decompressobj(wbits=31)  # 31: expect a gzip wrapper
        out = b""
        while len(out) < size:
            chunk = fobj.read(4096)
            if not chunk:
                break
            out += inflate.decompress(chunk, size - len(out))
        return out


def read_nifti_header(path: Path) -> nib.Nifti1Header | nib.Nifti2Header:
    """The header of a NIfTI-1 or NIfTI-2 file, as written (voxels are not read).

    ``nib.load`` would quietly repair some fields (zero voxel sizes become 1), which
    would hide exactly what validation looks for, so the raw header is parsed here.

    Raises:
        ValueError: not a NIfTI header. OSError: unreadable or not gzip.
    """
    raw = read_head(path, _NIFTI2_SIZE)
    sizes = {int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")}
    klass = (nib.Nifti1Header if _NIFTI1_SIZE in sizes
             else nib.Nifti2Header if _NIFTI2_SIZE in sizes else None)
    if klass is None or len(raw) < klass.template_dtype.itemsize:
        raise ValueError("no NIfTI header (wrong size field or file too short)")
    header = klass(raw[: klass.template_dtype.itemsize], check=False)
    if bytes(header["magic"]).rstrip(b"\0") not in _NIFTI_MAGIC:
        raise ValueError(f"no NIfTI magic string (found {bytes(header['magic'])!r})")
    return header


def nifti_issues(path: Path) -> list[Issue]:
    """Header-level problems of one NIfTI image (no voxel data is read)."""
    if not path.is_file():
        return [("an existing image file", "check the path and that the file was copied", None)]
    if not path.name.endswith((".nii", ".nii.gz")):
        return [("a NIfTI image (.nii or .nii.gz)",
                 "convert the image to NIfTI (e.g. dcm2niix, or nibabel for .mgz)",
                 f"file type '{''.join(path.suffixes) or path.name}'")]
    try:
        header = read_nifti_header(path)
        shape = tuple(int(n) for n in header.get_data_shape())
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
    except Exception as exc:  # bad gzip, short file, garbage: all mean "not a NIfTI"
        return [("a readable NIfTI image", "re-export the image, or replace the damaged file",
                 f"not a NIfTI file ({type(exc).__name__}: {exc})")]
    return shape_issues(shape) + (zoom_issues(zooms) if len(shape) >= 3 else [])


def shape_issues(shape: tuple[int, ...]) -> list[Issue]:
    """A 3D image is expected; extra dimensions must hold a single volume."""
    if len(shape) < 3 or 0 in shape:
        return [("a 3D image", "use a 3D T1-weighted volume", f"shape {shape}")]
    volumes = math.prod(shape[3:])
    if volumes > 1:
        return [("a 3D image (a 4D image must hold a single volume)",
                 "keep one volume per file (e.g. split it with nibabel's four_to_three) "
                 "and list each volume as its own run",
                 f"shape {shape}, {volumes} volumes")]
    return []


def zoom_issues(zooms: tuple[float, ...]) -> list[Issue]:
    """Voxel sizes must be finite and positive."""
    if len(zooms) == 3 and all(math.isfinite(z) and z > 0 for z in zooms):
        return []
    return [("finite, positive voxel sizes (mm)",
             "repair the header's pixdim, e.g. re-convert the scan from DICOM",
             f"voxel sizes {zooms}")]


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype] | list[Issue]:
    """Shape and dtype of an ``.npy`` file, or the issue that stops it being read."""
    if not path.is_file():
        return [("an existing .npy file", "check the path and that the file was copied", None)]
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)  # maps, reads nothing
        shape, dtype = tuple(arr.shape), arr.dtype
        del arr
    except Exception as exc:  # truncated, pickled or not an .npy at all
        return [("a readable .npy array", "re-download or re-create the file",
                 f"unreadable ({type(exc).__name__}: {exc})")]
    if dtype.kind not in "fiu":
        return [("a numeric array", "re-create the file from the image", f"dtype {dtype}")]
    return shape, dtype


def flat_issues(path: Path, rows: int | None = None, *, at_least: bool = False) -> list[Issue]:
    """Problems of a flat array (one subject per row), e.g. OpenBHB's ``train.npy``.

    Args:
        path: The ``.npy`` file.
        rows: Rows the table expects: exactly this many, or at least this many.
        at_least: Only require `rows` rows (a table listing some rows of the array).
    """
    header = _npy_header(path)
    if isinstance(header, list):
        return header
    shape = header[0]
    if len(shape) != 2:
        return [("a 2D array (subjects x features)", "use the challenge's flat array",
                 f"shape {shape}")]
    if rows is not None and (shape[0] < rows if at_least else shape[0] != rows):
        return [(f"{'at least ' if at_least else ''}{rows} rows, one per row of its table",
                 "use the table that belongs to this array (train.tsv with train.npy)",
                 f"{shape[0]} rows, shape {shape}")]
    return []


def npy_issues(path: Path, expected_shape: tuple[int, ...] | None = None) -> list[Issue]:
    """Problems of one ``.npy`` volume, read memory-mapped (header and size only)."""
    header = _npy_header(path)
    if isinstance(header, list):
        return header
    shape = header[0]
    if expected_shape is not None and shape != expected_shape:
        return [(f"an array of shape {expected_shape}",
                 "check the file is the right modality and preprocessing", f"shape {shape}")]
    return shape_issues(shape[1:] if len(shape) == 4 and shape[0] == 1 else shape)


def image_issues(path: Path) -> list[Issue]:
    """Problems of one image file: ``.npy`` arrays or NIfTI images."""
    return npy_issues(path) if path.suffix == ".npy" else nifti_issues(path)


def issue_problems(issues: Iterable[Issue], path: Path, table_row: tuple[str, int] | None = None
                   ) -> list[Problem]:
    """Turn image issues into Problems, located at a table row when the path was listed there."""
    out = []
    for expected, fix, observed in issues:
        if table_row is None:
            out.append(Problem(str(path), expected, fix, value=observed))
        else:
            value = str(path) if observed is None else f"{path} ({observed})"
            out.append(Problem(table_row[0], expected, fix, value=value,
                               row=table_row[1], column="path"))
    return out
