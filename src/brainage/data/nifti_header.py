"""NIfTI headers parsed raw: the first 540 bytes of the file (gzip decompresses just that
much) plus its size (and, compressed, the gzip trailer), so a header that promises more data
than the file can hold is refused before anything is allocated; ``nib.load`` would quietly
repair the fields validation looks for (:mod:`brainage.data.headers` dispatches here).
"""

from __future__ import annotations

import logging
import math
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.data.scan_rules import (
    Issue,
    affine_issues,
    max_size_issues,
    min_size_issues,
    shape_issues,
    zoom_issues,
)
from brainage.errors import one_line

_NIFTI1_SIZE, _NIFTI2_SIZE = 348, 540
_NIFTI_MAGIC = (b"n+1", b"ni1", b"n+2", b"ni2")
#: nibabel's header repairs (made silently here: validation reports what they hide).
_QUIET = logging.getLogger("brainage.headers.nibabel")
_QUIET.propagate = False
_QUIET.addHandler(logging.NullHandler())
#: Deflate compresses at most about 1032:1, so n gzip bytes hold at most this many times n.
_MAX_GZIP_RATIO = 1032


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
                 "convert the image to NIfTI (nibabel for .mgz), or give a DICOM file's folder",
                 f"file type '{''.join(path.suffixes) or path.name}'")]
    try:
        header = read_nifti_header(path)
        shape = tuple(int(n) for n in header.get_data_shape())
        zooms = tuple(float(z) for z in header.get_zooms()[:3])
        itemsize = header.get_data_dtype().itemsize
        offset = int(header["vox_offset"])
        affine = repaired_affine(header)
    except Exception as exc:  # bad gzip, short file, garbage: all mean "not a NIfTI"
        return [("a readable NIfTI image", "re-export the image, or replace the damaged file",
                 f"could not be read as NIfTI ({type(exc).__name__}: {one_line(exc)})")]
    issues = shape_issues(shape)
    if issues:
        return issues
    issues = zoom_issues(zooms) + min_size_issues(shape) + affine_issues(affine)
    return issues + (data_size_issues(path, shape, itemsize, offset) or max_size_issues(shape))


def repaired_affine(header: nib.Nifti1Header | nib.Nifti2Header) -> np.ndarray:
    """The voxel-to-world affine ``nib.load`` will use: that of the header once nibabel has
    repaired it (an invalid sform_code becomes 0, so the qform is used instead)."""
    fixed = header.copy()
    fixed.check_fix(logger=_QUIET, error_level=100)  # repair, never raise
    return fixed.get_best_affine()


def data_size_issues(path: Path, shape: tuple[int, ...], itemsize: int, offset: int
                     ) -> list[Issue]:
    """The file must hold the voxel bytes its header promises.

    Compressed files: first a bound (deflate cannot pack more than ~1032:1), then the gzip
    trailer (the inflated size); only when the trailer disagrees (a cut stream, several
    gzip members, trailing bytes) is the stream inflated, counting bytes without keeping them.
    """
    need = offset + math.prod(shape) * itemsize
    size = path.stat().st_size
    expected = f"a complete image ({need:,} bytes for shape {shape} of {itemsize}-byte voxels)"
    fix = "copy or convert the scan again: the file was cut short or its header is damaged"
    if not path.name.endswith(".gz"):
        short = size < need
        return [(expected, fix, f"data cut short: the file has {size:,} bytes")] if short else []
    if need > _MAX_GZIP_RATIO * size + 64:
        return [(expected, fix, f"data cut short or header damaged: {size:,} compressed bytes "
                 f"cannot hold {need:,}")]
    with open(path, "rb") as fobj:
        fobj.seek(max(0, size - 4))
        trailer = int.from_bytes(fobj.read(4), "little")  # uncompressed size mod 2**32
    if need >= 2**32 or trailer == need:  # a single gzip member of exactly the promised size
        return []
    got, error = _inflated_size(path, need)
    if error:
        return [(expected, fix, f"damaged gzip data after {got:,} bytes ({error})")]
    if got < need:
        return [(expected, fix, f"data cut short: the gzip stream ends after {got:,} bytes")]
    return []


def _inflated_size(path: Path, limit: int) -> tuple[int, str | None]:
    """Bytes a gzip file inflates to (counting stops at `limit`), and any zlib error."""
    got, inflate = 0, zlib.decompressobj(wbits=31)
    with open(path, "rb") as fobj:
        while got < limit:
            chunk = fobj.read(1 << 20)
            if not chunk:
                break
            try:
                while chunk and got < limit:
                    got += len(inflate.decompress(chunk, 1 << 24))
                    chunk = inflate.unconsumed_tail
                    if inflate.eof:  # several gzip members: go on with the next one
                        chunk, inflate = inflate.unused_data + chunk, zlib.decompressobj(wbits=31)
            except zlib.error as exc:
                return got, one_line(exc)
    return got, None
