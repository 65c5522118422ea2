"""Convert one DICOM series to an in-memory NIfTI image with the ``dcm2niix`` wheel.

The series' files are linked into a temporary folder (so dcm2niix sees that series only),
converted into another temporary folder, and the result is read fully into memory before
both folders are removed: nothing is left on disk, and nothing is downloaded. The
binary is the one the ``dcm2niix`` Python package ships (``dcm2niix.bin``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from brainage.data.dicom import Series, pick_series
from brainage.errors import InputError, NotFoundError, one_line

#: Seconds one conversion may take (a 1 mm whole-head series converts in about a second).
TIMEOUT_S = 300


def dcm2niix_binary() -> str:
    """Path of the dcm2niix executable shipped by the ``dcm2niix`` wheel.

    Raises:
        NotFoundError: the package is not installed (or its binary is missing).
    """
    try:
        import dcm2niix
    except ImportError:
        found = shutil.which("dcm2niix")
        if found:
            return found
        raise NotFoundError("DICOM input needs dcm2niix, which is not installed. Fix: "
                            "pip install dcm2niix (a dependency of brainage).") from None
    if not Path(dcm2niix.bin).is_file():
        raise NotFoundError(f"{dcm2niix.bin}: the dcm2niix binary of the installed package is "
                            "missing. Fix: pip install --force-reinstall dcm2niix.")
    return str(dcm2niix.bin)


def load_dicom(folder: str | Path, series: str | None = None) -> Any:
    """The picked series of a DICOM folder as an in-memory nibabel image.

    Args:
        folder: A folder of DICOM files (one series, or a study).
        series: SeriesNumber or SeriesInstanceUID; None picks the T1w series
            (:func:`brainage.data.dicom.pick_series`).

    Raises:
        BrainAgeError: no or ambiguous series, or dcm2niix failed (its message quoted).
    """
    return convert_series(Path(folder), pick_series(folder, series))


def convert_series(folder: Path, series: Series) -> Any:
    """One series -> an in-memory ``Nifti1Image`` (temporary files removed).

    Raises:
        InputError: dcm2niix failed, or wrote no image or several.
    """
    import nibabel as nib
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="brainage-dicom-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        out.mkdir()
        for i, path in enumerate(series.files):
            _link(path, src / f"{i:06d}.dcm")
        log = _run(folder, series, src, out)
        nifti = _one_output(folder, series, out, log)
        img = nib.load(nifti)
        data = np.asanyarray(img.dataobj)  # read now: the file goes with the folder
        return nib.Nifti1Image(data, img.affine, img.header)


def _link(path: Path, target: Path) -> None:
    try:
        os.symlink(path.resolve(), target)
    except OSError:  # file systems without symlinks
        shutil.copy2(path, target)


def _run(folder: Path, series: Series, src: Path, out: Path) -> str:
    """Run dcm2niix (uncompressed NIfTI, no BIDS sidecar); returns its output."""
    cmd = [dcm2niix_binary(), "-z", "n", "-b", "n", "-f", "series", "-o", str(out), str(src)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                              timeout=TIMEOUT_S, check=False)  # it echoes header text as is
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InputError(f"{folder}: dcm2niix could not convert series {series.label()} "
                         f"({type(exc).__name__}: {one_line(exc)}). Fix: check the DICOM "
                         "files, or convert them yourself and pass the NIfTI file.") from exc
    log = one_line(f"{done.stdout} {done.stderr}")
    if done.returncode != 0:
        raise InputError(f"{folder}: dcm2niix failed on series {series.label()} (exit "
                         f"{done.returncode}: {log[-600:]}). Fix: check that the series is "
                         "complete, or convert it yourself and pass the NIfTI file.")
    return log


def _one_output(folder: Path, series: Series, out: Path, log: str) -> Path:
    """The image dcm2niix wrote: the only one, else the one named after the series."""
    written = sorted(out.glob("*.nii"))
    if len(written) == 1:
        return written[0]
    plain = out / "series.nii"
    if plain in written:
        return plain
    names = ", ".join(p.name for p in written) or "none"
    raise InputError(f"{folder}: dcm2niix wrote {len(written)} images ({names}) for series "
                     f"{series.label()}; expected one 3D volume. dcm2niix said: {log[-400:]}. "
                     "Fix: check the series (several echoes or an incomplete volume), or "
                     "convert it yourself and pass the NIfTI file.")
