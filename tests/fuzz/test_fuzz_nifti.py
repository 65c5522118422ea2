"""Generated hostile NIfTI files: every header field mutated, files cut short, bytes flipped.

Each file goes the way a raw scan goes in ``prepare`` and ``predict`` (the header rules
of ``cohort check``, then ``load_image`` and ``conform``): it is read, or refused with a
named error that names the file and a fix, within bounded memory.
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from fuzz_helpers import FUZZ, read_or_refuse
from hypothesis import given
from hypothesis import strategies as st

from brainage.data.headers import check_scan
from brainage.data.nifti_header import nifti_issues
from brainage.errors import BrainAgeError, InputError
from brainage.preprocessing.steps import conform, load_image

SHAPE = (9, 10, 8)
_DTYPE = nib.Nifti1Header.template_dtype
#: Values that break readers: zero, negatives, type limits, NaN, inf, huge and tiny.
_INTS = [0, -1, 1, 3, 4, 7, 8, 9, 16, 255, 352, 1000, 2**15 - 1, -(2**15)]
#: The fields readers act on, drawn more often than the rest.
_KEY_FIELDS = ("sizeof_hdr", "dim", "datatype", "bitpix", "pixdim", "vox_offset", "scl_slope",
               "qform_code", "sform_code", "quatern_b", "qoffset_x", "srow_x", "srow_y",
               "srow_z", "magic")
_FLOATS = [0.0, -1.0, 1e-30, 1e30, 351.5, 352.0, 1e9, float("nan"), float("inf"), -float("inf")]


def _base() -> bytes:
    data = (np.arange(np.prod(SHAPE)) % 251).astype(np.uint8).reshape(SHAPE)
    return nib.Nifti1Image(data, np.diag([1.0, 1.2, 1.5, 1.0])).to_bytes()


BASE = _base()


def _mutate(field: str, index: int | None, value: object) -> bytes:
    """The base file with one element (index None: every element) of a header field set."""
    header = np.frombuffer(BASE[:348], dtype=_DTYPE).copy()
    flat = header[field].reshape(-1)
    at = slice(None) if index is None else index % flat.size
    kind = flat.dtype.kind
    with np.errstate(over="ignore"):
        if kind in "iu":
            info = np.iinfo(flat.dtype)
            flat[at] = min(max(int(value), info.min), info.max)  # type: ignore[call-overload]
        elif kind == "f":
            flat[at] = float(value)  # type: ignore[arg-type]
        else:
            flat[at] = bytes(value)  # type: ignore[call-overload]
    return header.tobytes() + BASE[348:]


def _value(field: str) -> st.SearchStrategy[object]:
    kind = _DTYPE[field].base.kind
    if kind in "iu":
        return st.sampled_from(_INTS) | st.integers(-(2**31), 2**31 - 1)
    if kind == "f":
        return st.sampled_from(_FLOATS) | st.floats(allow_nan=True, allow_infinity=True)
    return st.binary(min_size=0, max_size=_DTYPE[field].base.itemsize)


@st.composite
def hostile_nifti(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(file bytes, gzipped): header fields (one element or all of it) set to hostile
    values, and sometimes the file cut short or bytes flipped (compressed ones too)."""
    raw = BASE
    for _ in range(draw(st.integers(1, 2))):
        field = draw(st.sampled_from(_KEY_FIELDS) | st.sampled_from(_DTYPE.names))
        index = draw(st.none() | st.integers(0, 7))
        raw = _mutate(field, index, draw(_value(field)))
    damage = draw(st.sampled_from(["none", "none", "cut", "flip"]))
    if damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    gz = draw(st.booleans())
    blob = bytearray(gzip.compress(raw, mtime=0) if gz else raw)
    if damage == "flip":
        for _ in range(draw(st.integers(1, 3))):
            blob[draw(st.integers(0, len(blob) - 1))] = draw(st.integers(0, 255))
    return bytes(blob), gz


def _prepare_reads(path: Path) -> object:
    """What prepare and predict do with a raw scan before registration."""
    return conform(load_image(path), str(path))


@FUZZ.__class__(FUZZ, max_examples=80)
@given(hostile_nifti())
def test_a_hostile_nifti_is_read_or_refused_by_name(case):
    blob, gz = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("scan.nii.gz" if gz else "scan.nii")
        path.write_bytes(blob)
        issues = nifti_issues(path)
        assert all(isinstance(text, str) for issue in issues for text in issue[:2])
        out = read_or_refuse(lambda: _prepare_reads(path), names=path.name)
        if issues:  # what cohort check refuses, prepare refuses too (before reading voxels)
            assert isinstance(out, BrainAgeError)


@pytest.mark.parametrize("row", [0, 1, 2])
@pytest.mark.parametrize("value", [0.0, float("nan")])
def test_a_degenerate_affine_is_refused_by_cohort_check_and_prepare(tmp_path, row, value):
    """Found by the fuzz test: an sform with a zero or NaN row raised nibabel's
    OrientationError (or numpy's LinAlgError) out of conform."""
    header = np.frombuffer(BASE[:348], dtype=_DTYPE).copy()
    header["sform_code"], header["qform_code"] = 1, 0
    header[f"srow_{'xyz'[row]}"] = value
    path = tmp_path / "scan.nii"
    path.write_bytes(header.tobytes() + BASE[348:])
    [(expected, fix, observed)] = nifti_issues(path)
    assert "affine" in expected and "unusable affine" in observed and "sform" in fix
    with pytest.raises(BrainAgeError, match=r"scan\.nii: unusable affine.*Fix: repair"):
        check_scan(path)
    img = nib.Nifti1Image(np.ones(SHAPE, np.float32), np.diag([1.0, 1.0, 1.0, 1.0]))
    img.set_sform(header_affine(row, value), code=1)
    with pytest.raises(InputError, match=r"^given: unusable affine.*three independent axes"):
        conform(img, "given")


def header_affine(row: int, value: float) -> np.ndarray:
    affine = np.diag([1.0, 1.2, 1.5, 1.0])
    affine[row] = value
    return affine


def test_an_invalid_sform_code_is_judged_on_the_qform_nibabel_uses(tmp_path):
    """nibabel repairs sform_code 7 to 0 and uses the (good) qform: not refused."""
    header = np.frombuffer(BASE[:348], dtype=_DTYPE).copy()
    header["sform_code"], header["srow_x"] = 7, 0.0
    path = tmp_path / "scan.nii"
    path.write_bytes(header.tobytes() + BASE[348:])
    assert nifti_issues(path) == []
    assert conform(load_image(path), "scan").data.shape == SHAPE


def test_a_header_promising_a_huge_gzip_volume_is_refused_within_bounded_memory(tmp_path):
    """2**27 int16 voxels promised by a 1 KiB .nii.gz: refused from the header and file size."""
    header = np.frombuffer(BASE[:348], dtype=_DTYPE).copy()
    header["dim"][0, 1:4] = (512, 512, 512)
    header["datatype"], header["bitpix"] = 4, 16
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(gzip.compress(header.tobytes() + BASE[348:], mtime=0))
    out = read_or_refuse(lambda: load_image(path), names="scan.nii.gz")
    assert isinstance(out, BrainAgeError)
    assert "cannot hold" in str(out)
