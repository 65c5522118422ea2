"""``brainage.predict``: one call for every input form (issue 23), the bundled model by
default. Registration is faked (in this process, ``jobs=1``); DICOM folders are converted
for real by dcm2niix, so their header ages are real."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import make_prepared, tiny_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from dicom_helpers import ramp_volume, write_series  # noqa: E402

import brainage  # noqa: E402
from brainage.errors import InputError, NotFoundError  # noqa: E402
from brainage.inference.outputs import NoteWarning  # noqa: E402
from brainage.inference.predictor import Predictor  # noqa: E402
from brainage.training.fit import train_cohort  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:run .* has no:UserWarning")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=8, no_age=(3,))


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory):
    with pytest.warns(UserWarning, match="no bias correction stored"):
        return train_cohort(prepared, tmp_path_factory.mktemp("r") / "run",
                            tiny_config(epochs=1))


@pytest.fixture
def seen(monkeypatch, prepared):
    """Fake registration: each raw scan becomes one of the prepared arrays (chosen by the
    number in its name, so different scans get different ages); records the paths."""
    import brainage.preprocessing.pipeline as pipeline

    paths: list[str] = []
    arrays = [np.load(p).astype(np.float32) for p in prepared.table["array_path"]]

    def fake(source, spec):
        paths.append(Path(source).name)
        label = Path(source).name.split("_")[0]  # sub-05 -> array 5
        digits = "".join(c for c in label if c.isdigit()) or "0"
        return SimpleNamespace(array=arrays[int(digits) % len(arrays)], tissues=None,
                               qc={"flags": []})

    monkeypatch.setattr(pipeline, "preprocess_scan", fake)
    return paths


def nifti(path: Path) -> Path:
    """A file named like a NIfTI scan (its bytes are never read: registration is faked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_one_file_and_a_list_of_files_give_the_predictors_rows(run, seen, tmp_path):
    files = [nifti(tmp_path / "sub-01_T1w.nii.gz"), nifti(tmp_path / "sub-05_T1w.nii")]
    one = brainage.predict(str(files[0]), run)
    assert one["participant_id"].tolist() == ["sub-01"] and seen == ["sub-01_T1w.nii.gz"]
    both = brainage.predict(files, run)
    assert both["participant_id"].tolist() == ["sub-01", "sub-05"]
    expected = Predictor.from_run(run).predict(files)
    pd.testing.assert_frame_equal(both, expected)
    assert both["predicted_age"].iloc[0] != both["predicted_age"].iloc[1]
    assert both.attrs["run_dir"] == Path(run)


def test_a_prepared_folder_and_an_opened_one_read_cohort_tsv(run, prepared, seen):
    progress: list[tuple[int, int]] = []
    out = brainage.predict(prepared.root, run, progress=lambda d, t: progress.append((d, t)))
    assert seen == []  # prepared arrays are never preprocessed again
    assert out["participant_id"].tolist() == prepared.table["participant_id"].tolist()
    ages = prepared.table["age"].to_numpy(dtype=float)
    np.testing.assert_allclose(out["age"], ages)
    known = ~np.isnan(ages)
    np.testing.assert_allclose(out["gap"][known], (out["predicted_age"] - out["age"])[known])
    assert progress[-1] == (len(out), len(out))
    opened = brainage.predict(prepared, run)
    pd.testing.assert_frame_equal(opened, out)


def test_a_bids_folder_takes_its_ages_from_participants_tsv(run, seen, tmp_path):
    bids = tmp_path / "bids"
    for label in ("02", "06"):
        nifti(bids / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
    (bids / "dataset_description.json").write_text(
        '{"Name": "t", "BIDSVersion": "1.9.0"}')
    (bids / "participants.tsv").write_text(
        "participant_id\tage\tsex\nsub-02\t33.5\tF\nsub-06\t61\tM\n")
    out = brainage.predict(bids, run)
    assert sorted(seen) == ["sub-02_T1w.nii.gz", "sub-06_T1w.nii.gz"]
    by_id = out.set_index("participant_id")
    assert by_id.loc["sub-02", "age"] == 33.5 and by_id.loc["sub-06", "sex"] == "M"
    assert np.isclose(by_id.loc["sub-06", "gap"], by_id.loc["sub-06", "predicted_age"] - 61)


def test_a_dicom_folder_gets_its_header_age(run, seen, tmp_path):
    study = tmp_path / "sub-04"
    write_series(study, ramp_volume((24, 28, 20)), number=3, age="052Y", sex="F")
    out = brainage.predict([study], run)
    row = out.iloc[0]
    assert row["participant_id"] == "sub-04" and row["age"] == 52.0
    assert row["age_source"] == "PatientAge" and row["sex"] == "F"
    assert len(seen) == 1


def test_a_mixed_list_predicts_each_form_in_order(run, prepared, seen, tmp_path):
    scan = nifti(tmp_path / "sub-07_T1w.nii.gz")
    study = tmp_path / "sub-09"
    write_series(study, ramp_volume((24, 28, 20)), number=3, age="040Y")
    out = brainage.predict([scan, prepared.root, study], run)
    n = len(prepared.table)
    # the raw scans together (at the first one's place), then the prepared folder
    assert out["participant_id"].tolist() == [
        "sub-07", "sub-09", *prepared.table["participant_id"]]
    assert out["age"].iloc[1] == 40.0 and len(out) == n + 2
    assert out.index.tolist() == list(range(n + 2))


def test_without_a_model_the_bundled_one_predicts_and_says_so(run, seen, tmp_path,
                                                              monkeypatch):
    import brainage.bundled_runs as bundled

    monkeypatch.setattr(bundled, "default_model_dir", lambda: Path(run))
    scan = nifti(tmp_path / "sub-03_T1w.nii.gz")
    with pytest.warns(NoteWarning, match=r"using the bundled model run: trained on 121"):
        out = brainage.predict(scan)
    assert out.attrs["run_dir"] == Path(run) and out["participant_id"].tolist() == ["sub-03"]
    with pytest.warns(NoteWarning, match="using the bundled model"):
        named = brainage.predict(scan, "bundled")
    pd.testing.assert_frame_equal(named, out)


def test_no_bundled_model_and_nothing_to_predict_are_refused(run, monkeypatch):
    import brainage.bundled_runs as bundled

    monkeypatch.setattr(bundled, "default_model_dir", lambda: None)
    with pytest.raises(NotFoundError, match="no bundled model. Fix: pass model=RUN"):
        brainage.predict("scan.nii.gz")
    with pytest.raises(InputError, match="nothing to predict with"):
        brainage.predict([], run)
