"""Header-level refusal of images that cannot be read: sizes, truncation, damage (issue 14).

One set of rules (``brainage.data.headers``) serves ``cohort check``, ``prepare`` and
``predict``; none of them may read (or allocate) the voxels to find out.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from brainage.data import nifti_header
from brainage.data.headers import check_scan
from brainage.data.nifti_header import nifti_issues
from brainage.data.scan_rules import MAX_VOXELS
from brainage.errors import BrainAgeError


def _header_only(path: Path, shape: tuple[int, ...], dtype: type, size: int = 4096) -> Path:
    """A file of `size` bytes whose header promises `shape` voxels of `dtype`."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = 352
    raw = header.binaryblock + b"\0" * (size - 348)
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def _no_voxels(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the voxels were read")

    monkeypatch.setattr(nib, "load", refuse)


def test_a_header_promising_more_than_the_file_holds_is_refused_unread(tmp_path, monkeypatch):
    _no_voxels(monkeypatch)
    (issue,) = nifti_issues(_header_only(tmp_path / "huge.nii", (1500, 1500, 1500), np.uint8))
    assert issue[0].startswith("a complete image (3,375,000,352 bytes")
    assert issue[2] == "data cut short: the file has 4,096 bytes"
    (issue,) = nifti_issues(_header_only(tmp_path / "huge.nii.gz", (4000,) * 3, np.float32))
    assert "cannot hold 256,000,000,352" in issue[2]


def test_more_voxels_than_the_maximum_are_refused(tmp_path, monkeypatch):
    path = _header_only(tmp_path / "big.nii", (1024, 1024, 512), np.uint8, size=352)
    monkeypatch.setattr(nifti_header, "data_size_issues", lambda *a: [])  # as if the data were there
    (issue,) = nifti_issues(path)
    assert f"at most {MAX_VOXELS:,} voxels" in issue[0] and "536,870,912 voxels" in issue[2]


def test_truncated_uncompressed_and_gzip_files(tmp_path, nifti):
    full = nifti(tmp_path / "full.nii", shape=(30, 20, 10))
    cut = tmp_path / "cut.nii"
    cut.write_bytes(full.read_bytes()[:2000])
    (issue,) = nifti_issues(cut)
    assert issue[2] == "data cut short: the file has 2,000 bytes" and "6,352 bytes" in issue[0]
    gz = tmp_path / "cut.nii.gz"
    gz.write_bytes(gzip.compress(full.read_bytes())[:-40])  # stream and trailer cut
    (issue,) = nifti_issues(gz)
    assert issue[2].startswith("data cut short: the gzip stream ends after")
    assert "\n" not in "".join(issue)


def test_damaged_gzip_data_is_refused(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (30, 20, 10), dtype=np.uint8)
    nib.save(nib.Nifti1Image(noise, np.eye(4)), tmp_path / "a.nii")
    raw = bytearray(gzip.compress((tmp_path / "a.nii").read_bytes()))
    raw[len(raw) // 2:len(raw) // 2 + 40] = b"\xff" * 40  # garbage inside the voxel stream
    raw[-4:] = (1).to_bytes(4, "little")  # and a trailer that disagrees
    path = tmp_path / "damaged.nii.gz"
    path.write_bytes(bytes(raw))
    (issue,) = nifti_issues(path)
    assert issue[2].startswith(("damaged gzip data after", "data cut short")), issue[2]


def test_several_gzip_members_and_trailing_bytes_are_fine(tmp_path, nifti):
    raw = nifti(tmp_path / "a.nii", shape=(30, 20, 10)).read_bytes()
    multi = tmp_path / "multi.nii.gz"
    multi.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    assert nifti_issues(multi) == []
    padded = tmp_path / "padded.nii"
    padded.write_bytes(raw + b"\0" * 10)
    assert nifti_issues(padded) == []


@pytest.mark.parametrize(("zooms", "shape", "observed"), [
    ((2.0, 2.0, 50.0), (20, 20, 20), "absurd voxel sizes (2.0, 2.0, 50.0) mm"),
    ((0.01, 1.0, 1.0), (20, 20, 20), "absurd voxel sizes (0.01, 1.0, 1.0) mm"),
    ((1.0, 1.0, 1.0), (4, 20, 20), "shape (4, 20, 20) is too small for a head scan"),
])
def test_the_pipelines_limits_are_header_rules(tmp_path, nifti, zooms, shape, observed):
    (issue,) = nifti_issues(nifti(tmp_path / "x.nii.gz", shape=shape, zooms=zooms))
    assert issue[2] == observed


def test_check_scan_is_one_line_naming_scan_problem_and_fix(tmp_path, monkeypatch):
    _no_voxels(monkeypatch)
    path = _header_only(tmp_path / "huge.nii", (1500, 1500, 1500), np.uint8)
    with pytest.raises(BrainAgeError) as info:
        check_scan(path, name="sub-01 (huge.nii)")
    text = str(info.value)
    assert text.startswith("sub-01 (huge.nii): data cut short") and "Fix: copy" in text
    assert "\n" not in text
    check_scan(_header_only(tmp_path / "ok.nii", (10, 10, 10), np.uint8, size=1352))
