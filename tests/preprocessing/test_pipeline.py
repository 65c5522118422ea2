"""The real pipeline end to end on a synthetic whole head with a known pose."""

from __future__ import annotations

from functools import lru_cache

import nibabel as nib
import numpy as np
import pytest
from prep_helpers import blob

from brainage.errors import BrainAgeError
from brainage.preprocessing import PreprocessingSpec, preprocess, preprocess_image
from brainage.preprocessing.antsio import affine_of, template_mask, template_mask_on_grid
from brainage.preprocessing.known_pose import (
    apply_pose,
    mean_displacement,
    random_pose,
    synthetic_head,
)
from brainage.preprocessing.skullstrip import dice


@lru_cache(maxsize=1)
def _posed_head():
    data, affine, brain = synthetic_head(2)
    pose = random_pose(np.random.default_rng(7))
    img = apply_pose(data, affine, pose, zooms=(3.0, 2.5, 2.0), axcodes="PSR")
    true_brain = apply_pose(brain.astype(np.float32), affine, pose, (3.0, 2.5, 2.0), "PSR")
    return img, pose, true_brain


def _template_points() -> np.ndarray:
    tm = template_mask(2)
    aff = affine_of(tm)
    return np.argwhere(tm.numpy() > 0.5) @ aff[:3, :3].T + aff[:3, 3]


@pytest.fixture(scope="module")
def result():
    img, _pose, _ = _posed_head()
    return preprocess(img, PreprocessingSpec.create())


def test_synthetic_head_is_registered_stripped_and_normalised(result):
    _img, pose, true_brain = _posed_head()
    spec = PreprocessingSpec.create()
    assert result.array.shape == (91, 109, 91) and result.array.dtype == np.float32
    np.testing.assert_array_equal(result.mask, template_mask_on_grid(spec.grid))
    brain = result.array[result.mask]
    assert abs(brain.mean()) < 1e-4 and abs(brain.std() - 1) < 1e-3
    assert (result.array[~result.mask] == 0).all()
    recovered = np.array(result.qc["affine_template_to_native"])
    assert mean_displacement(recovered, pose, _template_points()) < 2.0  # < 1 voxel of 2 mm
    assert result.qc["flags"] == [] and result.qc["similarity"] > 0.8
    canon = nib.as_closest_canonical(true_brain).get_fdata() > 0.5
    assert dice(result.native_mask, canon) > 0.9
    assert set(result.seconds) >= {"load", "register", "resample", "normalise", "qc", "total"}


def test_output_overlays_the_template(result):
    import ants

    from brainage.preprocessing.antsio import grid_image, template_t1

    spec = PreprocessingSpec.create()
    tpl = ants.resample_image_to_target(template_t1(2), grid_image(spec.grid)).numpy()
    r = np.corrcoef(result.array[result.mask], tpl[result.mask])[0, 1]
    assert r > 0.8


def test_preprocess_image_returns_array_affine_qc(monkeypatch, result):
    from brainage.preprocessing import pipeline

    monkeypatch.setattr(pipeline, "preprocess", lambda source, spec: result)
    array, affine, qc = preprocess_image("scan.nii.gz", PreprocessingSpec.create())
    assert array.shape == (91, 109, 91) and affine.shape == (4, 4)
    np.testing.assert_allclose(affine[:3, 3], [90, -126, -72])
    assert "flags" in qc and qc["input"]["orientation"] == "PSR"


def test_library_failures_become_brainage_errors(monkeypatch):
    from brainage.preprocessing import pipeline

    def boom(source, spec):
        raise RuntimeError("ITK exploded")

    monkeypatch.setattr(pipeline, "preprocess", boom)
    with pytest.raises(BrainAgeError, match="scan.nii.gz: preprocessing failed.*ITK exploded"):
        preprocess_image("scan.nii.gz", PreprocessingSpec.create())


def test_preprocess_image_raises_brainage_errors(tmp_path):
    flat = nib.Nifti1Image(np.zeros((30, 30, 30), np.float32), np.eye(4))
    with pytest.raises(BrainAgeError, match="empty"):
        preprocess_image(flat, PreprocessingSpec.create())


@pytest.mark.slow
def test_a_scan_that_cannot_register_is_flagged_not_dropped():
    img = nib.Nifti1Image(blob((40, 44, 36)), np.diag([4.0, 4.0, 4.0, 1.0]))
    result = preprocess(img, PreprocessingSpec.create())
    assert "registration_failure" in result.qc["flags"]
    assert result.array.shape == (91, 109, 91)
