"""Predictor: run folder round trip, spec refusal, flags, ensembles, raw files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import make_prepared, spec_for_tests, tiny_config

from brainage.errors import BrainAgeError
from brainage.inference.predictor import Predictor
from brainage.training.config import SplitSpec
from brainage.training.fit import train_cohort


def as_result(fake):
    """A fake ``preprocess_image`` (array, affine, qc) as a fake ``preprocess_scan``."""
    from types import SimpleNamespace

    def scan(path, spec):
        array, _affine, qc = fake(path, spec)
        return SimpleNamespace(array=array, qc=qc, tissues=None)

    return scan


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=12, no_age=(4,))


@pytest.fixture(scope="module")
def single(cohort, tmp_path_factory):
    with pytest.warns(UserWarning, match="no bias correction stored"):
        return train_cohort(cohort, tmp_path_factory.mktemp("r") / "one", tiny_config(epochs=1))


@pytest.fixture(scope="module")
def ensemble(cohort, tmp_path_factory):
    cfg = tiny_config(epochs=1, split=SplitSpec(method="kfold", folds=2, val=0.25))
    with pytest.warns(UserWarning, match="no bias correction stored"):
        return train_cohort(cohort, tmp_path_factory.mktemp("r") / "ens", cfg)


def test_round_trip_gives_the_training_predictions(single, cohort):
    saved = pd.read_csv(single / "predictions.tsv", sep="\t").set_index("participant_id")
    out = Predictor.from_run(single).predict(cohort.table).set_index("participant_id")
    np.testing.assert_allclose(out.loc[saved.index, "predicted_age"], saved["predicted_age"],
                               atol=1e-3)
    assert len(out) == len(cohort.table)  # training and unlabelled scans are predicted too
    assert np.isnan(out.loc["sub-04", "age"]) and np.isnan(out.loc["sub-04", "gap"])
    known = out["age"].notna()
    np.testing.assert_allclose(out.loc[known, "gap"],
                               out.loc[known, "predicted_age"] - out.loc[known, "age"])
    assert "ensemble_sd" not in out


def test_prepared_with_another_spec_is_refused(single, tmp_path):
    other = make_prepared(tmp_path / "other", n=3, spec=spec_for_tests(nonlinear=True))
    with pytest.raises(BrainAgeError, match=r"registration: 'affine' vs 'syn'.*prepares"):
        Predictor.from_run(single).predict(other)


def test_same_spec_is_accepted(single, cohort, tmp_path):
    again = make_prepared(tmp_path / "again", n=3, seed=5)
    out = Predictor.from_run(single).predict(again)
    assert list(out["participant_id"]) == ["sub-00", "sub-01", "sub-02"]


def test_out_of_range_ages_are_flagged(single, cohort):
    lo, hi = json.loads((single / "run.json").read_text())["training_range"]
    table = cohort.table.copy()
    table.loc[0, "age"], table.loc[1, "age"] = lo - 5, hi + 0.5
    out = Predictor.from_run(single).predict(table)
    assert out.loc[0, "ood"] == "age_out_of_range" and out.loc[1, "ood"] == "age_out_of_range"
    inside = table["age"].between(lo, hi)
    assert out.loc[inside, "ood"].isna().all()


def test_fold_models_are_averaged(ensemble, cohort):
    from brainage.data.datasets import ScanDataset
    from brainage.models import load_model
    from brainage.models.engine import predict_dataset

    out = Predictor.from_run(ensemble).predict(cohort.table)
    each = np.stack([predict_dataset(load_model(ensemble / f"fold-{k}"),
                                     ScanDataset.from_table(cohort.table)) for k in (0, 1)])
    np.testing.assert_allclose(out["predicted_age"], each.mean(0), atol=1e-4)
    np.testing.assert_allclose(out["ensemble_sd"], each.std(0), atol=1e-4)


def test_raw_files_use_the_runs_spec_and_report_qc(single, cohort, monkeypatch, tmp_path):
    import brainage.preprocessing.pipeline as pipeline

    seen = []

    def fake_preprocess(path, spec):
        seen.append(spec.hash)
        array = np.load(cohort.table["array_path"].iloc[0]).astype(np.float32)
        return array, np.eye(4), {"flags": ["truncated_fov"] if "ses-2" in str(path) else []}

    monkeypatch.setattr(pipeline, "preprocess_scan", as_result(fake_preprocess))
    files = [tmp_path / "sub-07_ses-1_T1w.nii.gz", tmp_path / "sub-07_ses-2_T1w.nii.gz",
             tmp_path / "scan.nii"]
    out = Predictor.from_run(single).predict(files)
    assert seen == [cohort.spec.hash] * 3
    assert list(out["participant_id"]) == ["sub-07", "sub-07", "scan"]
    assert list(out["session"].fillna("n/a")) == ["ses-1", "ses-2", "n/a"]
    assert out["qc_flags"].tolist()[1] == "truncated_fov" and pd.isna(out["qc_flags"][0])
    assert out["age"].isna().all() and np.isfinite(out["predicted_age"]).all()


def test_unfinished_run_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("epochs: 1\n")
    with pytest.raises(BrainAgeError, match="resume"):
        Predictor.from_run(tmp_path / "run")


def test_bias_correction_is_fitted_on_validation_and_applied(tmp_path):
    cohort = make_prepared(tmp_path / "prep", n=64, seed=3)
    cfg = tiny_config(epochs=1, split=SplitSpec(method="holdout", val=0.4, test=0.2))
    run = train_cohort(cohort, tmp_path / "run", cfg)
    bias = json.loads((run / "bias_correction.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert bias["fitted_on"] == "val" and bias["n_subjects"] == metrics["uncorrected"]["val"]["n"]
    assert set(metrics["corrected"]) == {"val", "test"}
    predictor = Predictor.from_run(run)
    out = predictor.predict(cohort.table)
    expected = out["predicted_age"] - (bias["models"]["__pooled__"]["coef"]["age"] * out["age"]
                                       + bias["models"]["__pooled__"]["coef"]["intercept"])
    np.testing.assert_allclose(out["corrected_age"], expected, atol=1e-6)
    np.testing.assert_allclose(out["corrected_gap"], out["corrected_age"] - out["age"])
    intervals = json.loads((run / "interval_calibration.json").read_text())
    assert intervals["fitted_on"] == "val" and intervals["method"] == "asymmetric"
    # one group (few validation subjects): the two calibrated tails around every prediction
    (low, high), = intervals["group_tails"]
    np.testing.assert_allclose(out["interval_low"] - out["predicted_age"], low)
    np.testing.assert_allclose(out["interval_high"] - out["predicted_age"], high)


def test_raw_scan_failing_preprocessing_is_a_row_with_its_reason(single, monkeypatch, tmp_path):
    import brainage.preprocessing.pipeline as pipeline

    def fake_preprocess(path, spec):
        if "bad" in str(path):
            raise BrainAgeError(f"{path}: not a NIfTI file")
        return np.zeros((20, 24, 18), np.float32), np.eye(4), {"flags": []}

    monkeypatch.setattr(pipeline, "preprocess_scan", as_result(fake_preprocess))
    predictor = Predictor.from_run(single)
    files = [tmp_path / "bad_T1w.nii", tmp_path / "sub-1_T1w.nii"]
    with pytest.warns(UserWarning, match="1 of 2 scan.*bad_T1w.nii.*not a NIfTI"):
        out = predictor.predict(files)
    assert out["participant_id"].tolist() == ["bad_T1w", "sub-1"]  # input order kept
    assert out["predicted_age"].isna().tolist() == [True, False]
    assert out["error"].iloc[0] == f"preprocessing failed: {files[0]}: not a NIfTI file"
    with pytest.raises(BrainAgeError, match="no input scan.*not a NIfTI"):
        predictor.predict([tmp_path / "bad_T1w.nii"])


def test_calibrated_intervals_are_written_by_predict(single, cohort):
    from brainage.evaluation.uncertainty import ConformalInterval

    predictor = Predictor.from_run(single)
    rng = np.random.default_rng(0)
    age = rng.uniform(20, 80, 40)
    predictor.intervals = ConformalInterval(alpha=0.1).fit(age, age + rng.normal(0, 3, 40))
    out = predictor.predict(cohort.table)
    half = predictor.intervals.quantile_
    np.testing.assert_allclose(out["interval_high"] - out["predicted_age"], half)
    np.testing.assert_allclose(out["predicted_age"] - out["interval_low"], half)


def test_arrays_of_another_shape_than_the_run_are_refused(single, tmp_path):
    predictor = Predictor.from_run(single)
    bad = tmp_path / "small.npy"
    np.save(bad, np.zeros((10, 12, 9), np.float16))
    table = pd.DataFrame({"participant_id": ["sub-x"], "array_path": [str(bad)]})
    with pytest.raises(ValueError, match=r"input shape \(20, 24, 18\).*sub-x \(10, 12, 9\)"):
        predictor.predict(table)
