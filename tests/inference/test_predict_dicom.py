"""``predict`` takes DICOM folders: converted with dcm2niix, ages from the header (issue 15)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from synthetic_runs import make_prepared, tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from dicom_helpers import ramp_volume, write_series  # noqa: E402

from brainage.errors import InputError  # noqa: E402
from brainage.inference.predictor import Predictor  # noqa: E402
from brainage.training.fit import train_cohort  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:run .* has no:UserWarning")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cohort = make_prepared(tmp_path_factory.mktemp("prep"), n=8)
    with pytest.warns(UserWarning):
        return train_cohort(cohort, tmp_path_factory.mktemp("r") / "run", tiny_config(epochs=1))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("dicom") / "sub-05"
    write_series(root / "t1", ramp_volume((24, 28, 20)), description="T1 MPRAGE", number=3,
                 age="45", sex="M")  # a bare number, as some exporters write it: years
    write_series(root / "t2", ramp_volume((24, 28, 12)), description="T2 TSE", number=4,
                 age="045Y", sex="M")
    return root


@pytest.fixture
def converted(monkeypatch):
    """Real loading (dcm2niix), fake registration: records the shapes of the loaded scans."""
    import brainage.preprocessing.pipeline as pipeline
    from brainage.preprocessing import steps

    shapes = []

    def fake(source, spec):
        shapes.append(steps.load_image(source).shape)
        return SimpleNamespace(array=np.zeros(spec.grid.shape, np.float32), tissues=None,
                               qc={"flags": []})

    monkeypatch.setattr(pipeline, "preprocess_scan", fake)
    return shapes


def test_a_dicom_study_is_predicted_with_the_header_age(run, study, converted, tmp_path):
    nifti_row = tmp_path / "sub-06_T1w.nii.gz"  # missing: a failed row, not a refusal
    with pytest.warns(UserWarning, match="1 of 2 scan"):
        out = Predictor.from_run(run).predict([study, nifti_row])
    assert converted == [(24, 28, 20)]  # the T1w series, not the T2w one
    row = out.iloc[0]
    assert row["participant_id"] == "sub-05" and row["age"] == 45.0 and row["sex"] == "M"
    assert row["age_source"] == "PatientAge" and out.iloc[1]["age_source"] == "none"
    assert row["age_note"] == "PatientAge '45' has no unit letter: read as 45 years"
    assert np.isclose(row["gap"], row["predicted_age"] - 45.0)
    assert out.iloc[1]["error"].startswith("preprocessing failed")


def test_the_series_option_picks_another_series(run, study, converted):
    Predictor.from_run(run).predict([study], dicom_series="4")
    assert converted == [(24, 28, 12)]


def test_an_ambiguous_study_is_a_row_naming_the_series(run, tmp_path, converted):
    root = tmp_path / "sub-07"
    write_series(root / "a", ramp_volume((24, 28, 20)), description="T1 MPRAGE", number=2)
    write_series(root / "b", ramp_volume((24, 28, 20)), description="T1 SPGR", number=6)
    other = tmp_path / "sub-08"
    write_series(other, ramp_volume((24, 28, 20)), number=1)
    with pytest.warns(UserWarning, match="not predicted"):
        out = Predictor.from_run(run).predict([root, other])
    assert "#2 'T1 MPRAGE'" in out.iloc[0]["error"] and "--dicom-series" in out.iloc[0]["error"]
    assert np.isnan(out.iloc[0]["age"]) and np.isfinite(out.iloc[1]["predicted_age"])


def test_a_series_option_without_dicom_inputs_is_refused(run, tmp_path):
    with pytest.raises(InputError, match="not DICOM folders"):
        Predictor.from_run(run).predict(tmp_path / "cohort.tsv", dicom_series="3")


def test_explain_reads_a_dicom_series_converted_once(study, monkeypatch):
    import brainage.preprocessing.pipeline as pipeline
    from brainage.inference import explain_io
    from brainage.preprocessing.spec import PreprocessingSpec

    spec = PreprocessingSpec.create("8mm:20x24x18")
    given = []

    def fake(img, spec, name=None):
        given.append((type(img).__name__, name))
        grid = spec.grid.shape
        return pipeline.PreprocessResult(np.zeros(grid, np.float32), np.ones(grid, bool),
                                         spec.grid.affine_array, {"flags": []},
                                         np.ones(img.shape, bool), img.affine)

    monkeypatch.setattr(pipeline, "preprocess", fake)
    inp = explain_io.read_input(study, spec, dicom_series="4")
    assert given == [("Nifti1Image", f"{study} (series 4)")]
    assert inp.native_shape == (24, 28, 12) and inp.source == str(study)
    assert inp.key.participant_id == "05"  # named after the folder (sub-05)
