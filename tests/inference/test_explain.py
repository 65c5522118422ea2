"""explain_scan: run folder in, BIDS-derivative maps (template + native) and regions out."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from synthetic_runs import make_prepared, tiny_config

from brainage.errors import BrainAgeError
from brainage.inference import explain_io
from brainage.inference.explain import explain_scan, explain_scans, load_run
from brainage.inference.predictor import Predictor
from brainage.preprocessing import pipeline
from brainage.preprocessing.known_pose import random_pose
from brainage.training.fit import train_cohort

TEMPLATE = "space-MNI152NLin2009aSym_res-8_desc-saliency"


def _centre(weights: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World (mm) centre of mass of |weights|."""
    w = np.abs(weights)
    ijk = (np.indices(w.shape).reshape(3, -1) * w.ravel()).sum(1) / w.sum()
    return (affine @ np.append(ijk, 1))[:3]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=8)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    # holdout with 8 scans: too few held out for a bias correction
    with pytest.warns(UserWarning, match="no bias correction stored"):
        return train_cohort(cohort, tmp_path_factory.mktemp("r") / "run", tiny_config(epochs=1))


@pytest.fixture(scope="module")
def loaded(run):
    return load_run(run, device="cpu")


def test_prepared_array_gives_template_map_regions_and_sidecars(run, cohort, tmp_path):
    npy = cohort.table["array_path"].iloc[0]
    out = explain_scan(run, npy, tmp_path, steps=8, device="cpu")
    anat = tmp_path / "sub-00" / "anat"
    assert out.files["template"] == anat / f"sub-00_{TEMPLATE}_T1w.nii.gz"
    assert "native" not in out.files and not list(anat.glob("*space-T1w*"))
    img = nib.load(out.files["template"])
    spec = load_run(run, "cpu").spec
    np.testing.assert_allclose(img.affine, spec.grid.affine_array)
    assert img.shape == spec.grid.shape == out.saliency.shape
    assert int(img.header["sform_code"]) == 4
    np.testing.assert_allclose(np.asarray(img.dataobj), out.saliency)
    side = json.loads(out.files["template_json"].read_text())
    assert side["Method"] == "integrated_gradients" and side["Steps"] == 8
    assert abs(side["CompletenessError"]) < 0.05 * max(1.0, abs(side["AttributionSum"]))
    assert side["PreprocessingSpecHash"] == spec.hash and "already prepared" in side["NativeSpace"]
    table = pd.read_csv(out.files["regions"], sep="\t")
    assert out.files["regions"].name == f"sub-00_{TEMPLATE}_regions.tsv"
    assert set(json.loads(out.files["regions_json"].read_text())) == set(table.columns)
    desc = json.loads((tmp_path / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "brainage"


def test_prediction_matches_the_predictor(run, cohort, loaded, tmp_path):
    pred = Predictor.from_run(run).predict(cohort.table.iloc[:2])
    for i in range(2):
        out = explain_scan(loaded, cohort.table["array_path"].iloc[i], tmp_path, steps=4)
        assert out.prediction == pytest.approx(pred["predicted_age"].iloc[i], abs=1e-3)


def test_in_memory_array_needs_a_label_and_the_run_grid(loaded, cohort, tmp_path):
    arr = np.load(cohort.table["array_path"].iloc[1]).astype(np.float32)
    with pytest.raises(BrainAgeError, match="subject="):
        explain_scan(loaded, arr, tmp_path)
    out = explain_scan(loaded, arr, tmp_path, "occlusion", patch=4, subject="A1",
                       session="2")
    assert out.files["template"].parent == tmp_path / "sub-A1" / "ses-2" / "anat"
    assert out.info["Method"] == "occlusion"
    with pytest.raises(BrainAgeError, match="not on the run's grid"):
        explain_scan(loaded, arr[:-1], tmp_path, subject="A1")
    with pytest.raises(BrainAgeError, match="unknown explanation method"):
        explain_scan(loaded, arr, tmp_path, "gradcam", subject="A1")
    with pytest.raises(BrainAgeError, match="linear contributions exist only"):
        explain_scan(loaded, arr, tmp_path, "linear", subject="A1")


def test_missing_run_and_unreadable_scans_are_clear_errors(run, tmp_path):
    with pytest.raises(BrainAgeError, match="run folder not found"):
        explain_scan(tmp_path / "nope", tmp_path / "x.nii.gz", tmp_path)
    bad = tmp_path / "sub-01_T1w.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(BrainAgeError, match="could not be read"):
        explain_scan(run, bad, tmp_path / "out")
    with pytest.raises(BrainAgeError, match="image not found"):
        explain_scan(run, tmp_path / "sub-02_T1w.nii.gz", tmp_path / "out")
    with pytest.raises(BrainAgeError, match="expected a NIfTI"):
        explain_scan(run, tmp_path / "scan.txt", tmp_path / "out")


@pytest.fixture
def posed_raw(cohort, loaded, tmp_path, monkeypatch):
    """A raw 'scan' whose template -> native transform is a known pose (fake preprocessing)."""
    spec = loaded.spec
    pose = random_pose(np.random.default_rng(4), max_scale=0.05)
    native_aff = np.diag([-1.5, 1.25, 2.0, 1.0])  # LAS, anisotropic voxels
    native_aff[:3, 3] = pose[:3, 3] + [110.0, -135.0, -60.0]
    path = tmp_path / "raw" / "sub-07_ses-1_run-2_T1w.nii.gz"
    path.parent.mkdir()
    nib.save(nib.Nifti1Image(np.ones((150, 180, 100), np.float32), native_aff), path)
    array = np.load(cohort.table["array_path"].iloc[2]).astype(np.float32)

    def fake(source, spec_, name=None):
        qc = {"affine_template_to_native": pose.tolist(), "flags": []}
        return pipeline.PreprocessResult(array, array != 0, spec.grid.affine_array, qc,
                                         np.ones((2, 2, 2), bool), np.eye(4))

    monkeypatch.setattr(pipeline, "preprocess", fake)
    return path, pose, native_aff


def test_raw_scan_also_gets_a_native_space_map(loaded, posed_raw, tmp_path):
    path, pose, native_aff = posed_raw
    out = explain_scan(loaded, path, tmp_path / "d", steps=4)
    assert out.files["native"].name == "sub-07_ses-1_run-2_space-T1w_desc-saliency_T1w.nii.gz"
    assert out.files["native"].parent == tmp_path / "d" / "sub-07" / "ses-1" / "anat"
    nat = nib.load(out.files["native"])
    np.testing.assert_allclose(nat.affine, native_aff)
    assert nat.shape == (150, 180, 100)
    data = np.asarray(nat.dataobj)
    # per-native-voxel units: the map's total is kept (up to interpolation)
    assert data.sum() == pytest.approx(out.saliency.sum(), rel=0.1, abs=0.05)
    assert out.info["NativeSpace"] == "inverse of the registration affine"
    # the mass centre lands where the pose puts the template's
    expected = pose @ np.append(_centre(out.saliency, loaded.spec.grid.affine_array), 1)
    assert np.linalg.norm(_centre(data, native_aff) - expected[:3]) < 3.0


def test_explain_scans_loads_the_run_once(run, cohort, tmp_path):
    paths = list(cohort.table["array_path"].iloc[3:5])
    outs = explain_scans(run, paths, tmp_path, steps=4, device="cpu")
    assert [o.files["template"].parent.parent.name for o in outs] == ["sub-03", "sub-04"]


def test_scan_key_from_bids_and_plain_names():
    key = explain_io.scan_key("/d/sub-01_ses-A_run-3_T1w.nii.gz", None, None)
    assert key.stem == "sub-01_ses-A_run-3"
    assert explain_io.scan_key("/d/my scan_7.nii.gz", None, None).stem == "sub-myscan7"
    assert explain_io.scan_key("/d/x.nii", "P9", "b").stem == "sub-P9_ses-b"


@pytest.mark.slow
def test_real_pipeline_native_map_follows_the_head(loaded, tmp_path):
    from brainage.preprocessing.known_pose import apply_pose, synthetic_head

    data, affine, _ = synthetic_head(2)
    pose = random_pose(np.random.default_rng(7))
    path = tmp_path / "sub-09_T1w.nii.gz"
    nib.save(apply_pose(data, affine, pose, zooms=(3.0, 2.5, 2.0), axcodes="PSR"), path)
    out = explain_scan(loaded, path, tmp_path / "d", steps=4)
    raw, nat = nib.load(path), nib.load(out.files["native"])
    assert nat.shape == raw.shape and np.allclose(nat.affine, raw.affine)
    expected = pose @ np.append(_centre(out.saliency, loaded.spec.grid.affine_array), 1)
    assert np.linalg.norm(_centre(np.asarray(nat.dataobj), nat.affine) - expected[:3]) < 4.0
