"""``brainage predict`` never drops or guesses silently, and refuses bad paths and run files
before computing anything (issue 14)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import make_prepared, one_torch_thread, tiny_config  # noqa: E402

from brainage.cli import predict as predict_cli  # noqa: E402
from brainage.preprocessing.cache import CacheStore, ScanKey  # noqa: E402


def as_result(fake):
    """A fake ``preprocess_image`` (array, affine, qc) as a fake ``preprocess_scan``."""
    from types import SimpleNamespace

    def scan(path, spec):
        array, _affine, qc = fake(path, spec)
        return SimpleNamespace(array=array, qc=qc, tissues=None)

    return scan

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


def app() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def main() -> None:
        """Test app."""

    predict_cli.register(cli)
    return cli


def predict(*args: object):
    """The command in this process (--jobs 1 unless given: fakes are patched in here)."""
    jobs = [] if "--jobs" in args else ["--jobs", "1"]
    return CliRunner().invoke(app(), ["predict", *map(str, args), *jobs])


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Ten prepared scans plus two that failed in prepare (as index.tsv records them)."""
    root = tmp_path_factory.mktemp("prep") / "prepared"
    cohort = make_prepared(root, n=10)
    store = CacheStore(root, cohort.spec)
    for label, error in (("88", "data cut short: the file has 4,096 bytes"),
                         ("99", "absurd voxel sizes (2.0, 2.0, 50.0) mm")):
        key = ScanKey(f"sub-{label}")
        store.write_record(key, {"participant_id": key.participant_id, "session": None,
                                 "run": None, "scan": key.stem, "source": "x.nii",
                                 "spec_hash": cohort.spec.hash, "status": "failed",
                                 "error": error, "flags": []})
    store.build_index()
    return root


@pytest.fixture(scope="module")
def run(prepared, tmp_path_factory):
    from brainage.preprocessing.prepared import open_prepared
    from brainage.training.fit import train_cohort

    with pytest.warns(UserWarning):
        return train_cohort(open_prepared(prepared), tmp_path_factory.mktemp("r") / "run",
                            tiny_config(epochs=1))


def test_failed_scans_of_a_prepared_folder_are_rows_with_their_reason(run, prepared, tmp_path):
    out = tmp_path / "p.tsv"
    result = predict(run, prepared, "-o", out)
    assert result.exit_code == 1, result.output  # some scans were not predicted
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 12 and table["predicted_age"].notna().sum() == 10
    failed = table.set_index("participant_id").loc[["sub-88", "sub-99"], "error"]
    assert failed.str.startswith("failed in prepare: ").all()
    assert "not predicted  sub-88: failed in prepare: data cut short" in result.output
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["scans"] == 12 and sidecar["predicted"] == 10
    assert [r["participant_id"] for r in sidecar["not_predicted"]] == ["sub-88", "sub-99"]


def test_a_run_without_bias_correction_or_intervals_says_so(run, prepared, tmp_path):
    out = tmp_path / "p.tsv"
    result = predict(run, prepared, "-o", out)
    assert "has no bias_correction.json, so the predictions have no corrected_age" in \
        result.output
    assert "has no interval_calibration.json" in result.output
    notes = json.loads(out.with_suffix(".json").read_text())["notes"]
    assert any("bias_correction.json" in n and "training fitted none" in n for n in notes)


@pytest.mark.parametrize("where", ["folder", "under_a_file"])
def test_the_output_path_is_checked_before_anything_is_computed(run, prepared, tmp_path,
                                                                monkeypatch, where):
    from brainage.inference.predictor import Predictor

    monkeypatch.setattr(Predictor, "from_run", lambda *a, **k: pytest.fail("computed first"))
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    out = tmp_path / "dir" if where == "folder" else tmp_path / "file" / "p.tsv"
    result = predict(run, prepared, "-o", out)
    assert result.exit_code != 0 and result.exception is not None
    message = str(result.exception)
    assert ("is a folder" in message) if where == "folder" else ("is a file" in message)
    assert "Fix:" in message


def _damage(run: Path, tmp_path: Path, name: str, change) -> Path:
    copy = tmp_path / f"run-{name.split('.')[0]}"
    shutil.copytree(run, copy)
    path = copy / name
    if change is None:
        path.unlink()
    else:
        path.write_text(json.dumps(change(json.loads(path.read_text())
                                          if path.is_file() else None)))
    return copy


def _bias(_old):
    from brainage.evaluation.bias import BiasCorrector

    rng = np.random.default_rng(0)
    age = rng.uniform(20, 80, 30)
    data = BiasCorrector().fit(age, age + rng.normal(0, 3, 30)).to_dict()
    data["models"]["__pooled__"]["coef"]["age"] = "abc"
    return data


def _intervals(_old):
    return {"kind": "conformal", "alpha": 0.1, "method": "absolute", "eps": 0.5,
            "min_subjects": 20, "quantile": "x", "n_calibration": 26}


@pytest.mark.parametrize(("name", "change", "message"), [
    ("bias_correction.json", _bias, "models.__pooled__.coef.age is 'abc'; expected a finite"),
    ("interval_calibration.json", _intervals, "quantile is 'x'; expected a half-width"),
    ("run.json", lambda d: {**d, "training_range": ["a", 1]},
     "training_range is ['a', 1]; expected [min, max]"),
    ("preprocessing_spec.json", None, "a run folder keeps the preprocessing spec"),
])
def test_damaged_run_files_are_clear_errors(run, prepared, tmp_path, name, change, message):
    damaged = _damage(run, tmp_path, name, change)
    result = predict(damaged, prepared, "-o", tmp_path / "p.tsv")
    assert result.exit_code != 0 and not (tmp_path / "p.tsv").exists()
    assert message in str(result.exception) and "Fix:" in str(result.exception)


def test_bad_scans_of_a_raw_cohort_are_rows_not_a_refusal(run, tmp_path, monkeypatch):
    """Like prepare: the scan with a truncated file is listed, the others predicted."""
    import nibabel as nib

    from brainage.preprocessing import pipeline, steps

    def fake(path, spec):  # the header rules run as in the real pipeline, then a volume
        steps.load_image(path)
        return np.zeros(spec.grid.shape, np.float32), np.eye(4), {"flags": []}

    monkeypatch.setattr(pipeline, "preprocess_scan", as_result(fake))
    bids = tmp_path / "bids"
    for label in ("01", "02", "03"):
        anat = bids / f"sub-{label}" / "anat"
        anat.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.ones((20, 20, 20), np.float32), np.eye(4)),
                 anat / f"sub-{label}_T1w.nii")
    cut = bids / "sub-02" / "anat" / "sub-02_T1w.nii"
    cut.write_bytes(cut.read_bytes()[:4096])
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\nsub-02\t40\n")
    out = tmp_path / "p.tsv"
    result = predict(run, bids, "-o", out)
    assert result.exit_code == 1, result.output
    table = pd.read_csv(out, sep="\t")
    assert table["participant_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    assert table["predicted_age"].isna().tolist() == [False, True, False]
    assert "data cut short" in table.loc[1, "error"] and table.loc[1, "age"] == 40
    assert "sub-03" in result.output and "no row in participants.tsv" in result.output


def test_a_replaced_spec_file_is_named_not_called_failed_scans(run, prepared, tmp_path):
    from synthetic_runs import spec_for_tests

    swapped = tmp_path / "swapped"
    shutil.copytree(prepared, swapped)
    other = spec_for_tests(n4=False)
    other.save(swapped / "preprocessing_spec.json")
    result = predict(run, swapped, "-o", tmp_path / "p.tsv")
    message = str(result.exception)
    assert "no scan was prepared successfully" not in message
    assert "lists 10 prepared scan(s)" in message and other.short_hash in message
    assert "the spec file was replaced" in message and "Fix:" in message


def test_summary_names_the_training_ages_of_out_of_range_rows(tmp_path):
    import pandas as pd

    from brainage.cli.predict import summary

    table = pd.DataFrame({"participant_id": ["sub-1", "sub-2"], "age": [91.0, 50.0],
                          "predicted_age": [70.0, 51.0], "gap": [-21.0, 1.0],
                          "ood": ["age_out_of_range", None],
                          "ood_flags": ["age_out_of_range", None]})
    text = summary(table, tmp_path / "p.tsv", [], [20.2, 81.9])
    assert "1 outside the training ages 20-82" in text
    assert "pulled toward that range" in text
    assert "outside the training age range" in summary(table, tmp_path / "p.tsv", [])
