"""BIDS derivatives (names, affines, description) and QC flag logic."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from brainage import __version__
from brainage.preprocessing import qc
from brainage.preprocessing.cache import ScanKey
from brainage.preprocessing.derivatives import scan_paths, write_dataset_description, write_scan
from brainage.preprocessing.skullstrip import dice
from brainage.preprocessing.spec import PreprocessingSpec


def test_dataset_description(tmp_path):
    spec = PreprocessingSpec.create()
    desc = json.loads(write_dataset_description(tmp_path, spec, "/data/bids").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0] == {"Name": "brainage", "Version": __version__,
                                      "Description": desc["GeneratedBy"][0]["Description"]}
    assert desc["PreprocessingSpecHash"] == spec.hash


def test_scan_paths_follow_bids():
    spec = PreprocessingSpec.create()
    p = scan_paths("/out", ScanKey("sub-01", "ses-2", 3), spec)
    assert str(p["preproc"]) == ("/out/sub-01/ses-2/anat/sub-01_ses-2_run-3_space-"
                                 "MNI152NLin2009aSym_res-2_desc-preproc_T1w.nii.gz")
    assert p["mask"].name.endswith("_res-2_desc-brain_mask.nii.gz")
    vbm = scan_paths("/out", ScanKey("sub-01"), PreprocessingSpec.create("openbhb-vbm"))
    assert "_res-1p5_" in vbm["preproc"].name


def test_written_niftis_carry_the_mni_affine(tmp_path, small_spec):
    shape = small_spec.grid.shape
    array = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    mask = array > 0
    rel = write_scan(tmp_path, ScanKey("sub-01"), small_spec, array, mask,
                     {"flags": []}, "/raw/sub-01_T1w.nii.gz")
    img = nib.load(tmp_path / rel["preproc"])
    np.testing.assert_allclose(img.affine, small_spec.grid.affine_array)
    assert int(img.header["sform_code"]) == 4 and int(img.header["qform_code"]) == 4
    np.testing.assert_allclose(img.get_fdata(), array, atol=1e-6)
    m = nib.load(tmp_path / rel["mask"])
    assert m.get_data_dtype() == np.uint8 and (np.asarray(m.dataobj) == mask).all()
    side = json.loads((tmp_path / rel["sidecar"]).read_text())
    assert side["PreprocessingSpecHash"] == small_spec.hash and side["SkullStripped"]


def _qc(**changes):
    base = {"similarity": 0.5, "brain_volume_ml": 1300.0, "coverage": 1.0,
            "mask_dice_template": 0.95}
    return {**base, **changes}


def test_qc_flags():
    assert qc.flags_for(_qc(), "template") == []
    assert qc.flags_for(_qc(similarity=0.1), "template") == ["registration_failure"]
    assert qc.flags_for(_qc(brain_volume_ml=300.0), "template") == ["implausible_brain_volume"]
    assert qc.flags_for(_qc(coverage=0.8), "template") == ["truncated_fov"]
    assert qc.flags_for(_qc(mask_dice_template=0.5), "deepbet") == ["mask_disagreement"]
    assert qc.flags_for(_qc(mask_dice_template=0.5), "template") == []


def test_dice():
    a = np.zeros((4, 5, 6), bool)
    b = a.copy()
    a[:2], b[1:3] = True, True
    assert dice(a, b) == 0.5 and dice(a, a) == 1.0 and dice(~a & a, ~a & a) == 1.0


def test_summary_row_is_flat():
    row = qc.summary_row({**_qc(), "input": {"orientation": "PSR", "voxel_size_mm": [2, 2, 1.5]},
                          "seconds": {"total": 3.2}, "intensity": {"brain_mean": 0.0}})
    assert row["voxel_size_mm"] == "2x2x1.5" and row["seconds"] == 3.2
    assert set(row) == set(qc.SUMMARY_COLUMNS)
