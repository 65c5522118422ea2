"""Header-level checks of image files: NIfTI headers parsed raw, ``.npy`` memory-mapped.

These are the one definition of a usable scan header: ``cohort check`` reports them,
``prepare`` and ``predict`` refuse a scan on them (:func:`check_scan`) before any voxel
is read. A NIfTI file is opened for its first 540 bytes (the header; gzip decompresses
just that much) plus its size (and, compressed, the gzip trailer), so a header that
promises more data than the file can hold is refused before anything is allocated.
``np.load(..., mmap_mode="r")`` maps an array without reading it. Each check returns
*issues* (expected, fix, observed); :func:`issue_problems` turns them into
:class:`~brainage.errors.Problem` once it is known where the path was listed.
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.errors import NotFoundError, Problem

#: (expected, fix, observed) for one image.
Issue = tuple[str, str, str | None]
_NIFTI1_SIZE, _NIFTI2_SIZE = 348, 540
_NIFTI_MAGIC = (b"n+1", b"ni1", b"n+2", b"ni2")
#: Voxel sizes (mm) outside this range are refused as absurd.
ABSURD_VOXEL_MM: tuple[float, float] = (0.1, 10.0)
#: A head scan has at least this many voxels along every axis.
MIN_VOXELS_PER_AXIS = 8
#: Most voxels a header may promise: 2**28 (e.g. 645**3); a 0.5 mm whole-head T1w has
#: about 10**8, and the pipeline holds several float32 copies of the scan.
MAX_VOXELS = 2**28
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


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


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


def repaired_affine(header: nib.Nifti1Header | nib.Nifti2Header) -> np.ndarray:
    """The voxel-to-world affine ``nib.load`` will use: that of the header once nibabel has
    repaired it (an invalid sform_code becomes 0, so the qform is used instead)."""
    fixed = header.copy()
    fixed.check_fix(logger=_QUIET, error_level=100)  # repair, never raise
    return fixed.get_best_affine()


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


def check_scan(path: str | Path, name: str | None = None) -> None:
    """Refuse a raw scan on its header, before any voxel is read (prepare and predict).

    The same rules as ``cohort check`` (:func:`image_issues`).

    Args:
        path: The image file.
        name: How messages name the scan (default: the path).

    Raises:
        BrainAgeError: every issue, on one line: scan, what is wrong, expected, fix.
    """
    p = Path(path)
    issues = image_issues(p)
    if issues:
        raise NotFoundError("; ".join(
            f"{name or p}: {observed or 'image not found'}; expected {expected}. Fix: {fix}"
            for expected, fix, observed in issues))


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
    """Problems of one image: ``.npy`` arrays, NIfTI images or DICOM folders."""
    if path.is_dir():
        return dicom_issues(path)
    return npy_issues(path) if path.suffix == ".npy" else nifti_issues(path)


def dicom_issues(path: Path) -> list[Issue]:
    """A folder given as a scan must hold DICOM files (the series is picked when it is
    converted: :func:`brainage.data.dicom.pick_series`)."""
    from brainage.data.dicom import is_dicom_folder

    if is_dicom_folder(path):
        return []
    return [("a NIfTI image, or a folder of DICOM files",
             "give the scan's NIfTI file or the folder of its DICOM series",
             "a folder with no DICOM file")]


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
