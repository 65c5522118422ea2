"""Loading, validation and conforming of inputs; normalisation inside a mask."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from prep_helpers import SHAPE, blob, write_nifti

from brainage.errors import BrainAgeError
from brainage.preprocessing import steps


def test_conform_reorients_to_ras_without_moving_voxels_in_world(tmp_path):
    data = blob()
    data[2, 3, 4] = 500.0  # a marker voxel
    path = write_nifti(tmp_path / "x.nii.gz", data)
    img = nib.load(path)
    conf = steps.conform(img, "x")
    assert nib.aff2axcodes(conf.affine) == ("R", "A", "S")
    assert conf.data.dtype == np.float32 and conf.data.shape == SHAPE
    world = img.affine @ [2, 3, 4, 1]
    ijk = np.round(np.linalg.inv(conf.affine) @ world).astype(int)[:3]
    assert conf.data[tuple(ijk)] == 500.0
    assert conf.facts["orientation"] == "LPS" and conf.facts["voxel_size_mm"] == [2, 2, 2]
    assert conf.facts["shape"] == list(SHAPE) and conf.flags == []


def test_single_volume_4d_is_squeezed(tmp_path):
    path = write_nifti(tmp_path / "x.nii.gz", blob()[..., None])
    assert steps.conform(nib.load(path)).data.shape == SHAPE


@pytest.mark.parametrize(("data", "zooms", "message"), [
    (np.zeros(SHAPE, np.float32), (2, 2, 2), "empty"),
    (np.full(SHAPE, 7.0, np.float32), (2, 2, 2), "constant"),
    (np.full(SHAPE, np.nan, np.float32), (2, 2, 2), "NaN or infinite"),
    (blob()[:, :, 0], (2, 2, 2), "2D"),
    (np.stack([blob(), blob()], -1), (2, 2, 2), "4D with 2 volumes"),
    (blob(), (2, 2, 40), "absurd"),
    (blob(), (0.01, 1, 1), "absurd"),
    (blob((4, 28, 20)), (2, 2, 2), "too small"),
])
def test_bad_inputs_raise_clear_errors(tmp_path, data, zooms, message):
    path = write_nifti(tmp_path / "bad.nii.gz", data, zooms=zooms)
    with pytest.raises(BrainAgeError, match=message) as info:
        steps.conform(steps.load_image(path, "sub-x"), "sub-x")
    assert "Fix:" in str(info.value) and "sub-x" in str(info.value)


def test_a_few_nans_are_zeroed_and_flagged(tmp_path):
    data = blob()
    data[0, 0, :3] = np.nan
    conf = steps.conform(nib.load(write_nifti(tmp_path / "x.nii.gz", data)))
    assert np.isfinite(conf.data).all() and conf.flags == ["nonfinite_values"]


def test_extreme_but_usable_voxels_are_flagged(tmp_path):
    conf = steps.conform(nib.load(write_nifti(tmp_path / "x.nii.gz", blob(), (1, 1, 4.5))))
    assert conf.flags == ["extreme_voxel_size"]


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(BrainAgeError, match="not found"):
        steps.load_image(tmp_path / "none.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(BrainAgeError, match="could not be read"):
        steps.load_image(bad)


def test_head_mask_is_the_largest_component_filled():
    data = blob()
    data[0:2, 0:2, 0:2] = 100  # a speck away from the head
    data[12, 14, 10] = 0  # a hole inside
    mask = steps.head_mask(data)
    assert mask[12, 14, 10] and not mask[0, 0, 0] and mask.shape == SHAPE


def test_normalise_zscore_minmax_none():
    rng = np.random.default_rng(0)
    data = rng.normal(50, 10, SHAPE).astype(np.float32)
    mask = blob() > 50
    z = steps.normalise(data, mask, "zscore")
    assert abs(z[mask].mean()) < 1e-5 and abs(z[mask].std() - 1) < 1e-4
    assert (z[~mask] == 0).all() and z.dtype == np.float32
    m = steps.normalise(data, mask, "minmax")
    assert m[mask].min() == 0 and abs(m[mask].max() - 1) < 1e-6 and (m[~mask] == 0).all()
    n = steps.normalise(data, mask, "none")
    np.testing.assert_array_equal(n[mask], data[mask])


def test_normalise_refuses_empty_mask_and_constant_brain():
    with pytest.raises(BrainAgeError, match="mask is empty"):
        steps.normalise(np.ones(SHAPE), np.zeros(SHAPE, bool), "zscore")
    with pytest.raises(BrainAgeError, match="constant"):
        steps.normalise(np.ones(SHAPE), np.ones(SHAPE, bool), "zscore")


def test_truncated_scans_are_refused_before_their_voxels_are_read(tmp_path, monkeypatch):
    """The header rules of cohort check apply here too; nibabel is never asked for voxels."""
    path = write_nifti(tmp_path / "cut.nii", blob())
    path.write_bytes(path.read_bytes()[:5000])
    monkeypatch.setattr("nibabel.load", lambda *a, **k: pytest.fail("the voxels were read"))
    with pytest.raises(BrainAgeError, match=r"sub-x: data cut short: the file has 5,000 bytes"):
        steps.load_image(path, "sub-x")


def test_damaged_voxel_data_is_one_clear_line(tmp_path):
    """A stream cut where the header checks cannot see it fails when read, on one line."""
    import gzip

    raw = write_nifti(tmp_path / "a.nii", blob()).read_bytes()
    path = tmp_path / "bad.nii.gz"
    data = gzip.compress(raw)
    path.write_bytes(data[: len(data) // 2] + data[-4:])  # cut, but the trailer looks right
    with pytest.raises(BrainAgeError) as info:
        steps.conform(steps.load_image(path, "sub-x"), "sub-x")
    text = str(info.value)
    assert text.startswith("sub-x: ") and "Fix:" in text and "\n" not in text
