"""Header-level checks of image files: NIfTI headers parsed raw, ``.npy`` memory-mapped.

These are the one definition of a usable scan header: ``cohort check`` reports them,
``prepare`` and ``predict`` refuse a scan on them (:func:`check_scan`) before any voxel
is read. NIfTI headers are read by :mod:`brainage.data.nifti_header`, the geometry every
format must have is :mod:`brainage.data.scan_rules`; ``np.load(..., mmap_mode="r")``
maps an array without reading it. Each check returns
*issues* (expected, fix, observed); :func:`issue_problems` turns them into
:class:`~brainage.errors.Problem` once it is known where the path was listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from brainage.data.nifti_header import nifti_issues
from brainage.data.scan_rules import Issue, shape_issues
from brainage.errors import NotFoundError, Problem


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
