"""``brainage train`` and ``brainage predict``: thin shells over train_cohort / Predictor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import make_prepared, one_torch_thread  # noqa: E402

from brainage.cli import predict as predict_cli  # noqa: E402
from brainage.cli import train as train_cli  # noqa: E402

TINY = ["--set", "model.kwargs={channels: [4, 8, 4]}", "--set", "loss.name=mse",
        "--set", "epochs=1", "--set", "batch_size=4", "--set", "progress_bar=false",
        "--set", "accelerator=cpu", "--set", "model.name=sfcn", "--set", "repeats=1",
        "--set", "model.kwargs.input_pool=1"]


def app() -> typer.Typer:
    cli = typer.Typer()

    @cli.callback()
    def main() -> None:
        """Test app."""

    train_cli.register(cli)
    predict_cli.register(cli)
    return cli


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("prep") / "prepared"
    make_prepared(root, n=12, no_age=(2,), flags={3: ["truncated_fov"]})
    return root


_one_thread = pytest.fixture(autouse=True)(one_torch_thread)


def test_train_then_predict(prepared, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    result = runner.invoke(app(), ["train", str(prepared), str(run), "--folds", "2", *TINY])
    assert result.exit_code == 0, result.output
    assert "training ages" in result.output and "test: n 11" in result.output
    assert json.loads((run / "run.json").read_text())["members"] == ["fold-0", "fold-1"]
    out = tmp_path / "predictions.tsv"
    result = runner.invoke(app(), ["predict", str(run), str(prepared), "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns[:5]) == ["participant_id", "session", "age", "predicted_age", "gap"]
    assert {"ensemble_sd", "ood"} <= set(table.columns) and len(table) == 12
    assert np.isnan(table.loc[2, "age"]) and np.isfinite(table.loc[2, "predicted_age"])
    assert "Wrote 12 prediction(s)" in result.output and "1 with QC flags" in result.output
    assert table.loc[3, "qc_flags"] == "truncated_fov"


def test_cascade_from_the_command_line(prepared, tmp_path):
    stage2 = tmp_path / "s2.yaml"
    stage2.write_text("model: {name: tsan_stage2, kwargs: {width: 2, num_blocks: 2}}\n"
                      "loss: {name: mse}\noptim: {name: sgd, lr: 0.00001}\n"
                      "epochs: 1\nbatch_size: 4\n")
    run = tmp_path / "cascade"
    result = CliRunner().invoke(app(), ["train", str(prepared), str(run), "--cascade", "--folds",
                                        "2", "--stage2-config", str(stage2), *TINY])
    assert result.exit_code == 0, result.output
    assert "stage-2 test: mean SD within 5-year bins" in result.output
    assert json.loads((run / "run.json").read_text())["kind"] == "cascade"


def test_bad_override_is_a_clear_error(prepared, tmp_path):
    result = CliRunner().invoke(app(), ["train", str(prepared), str(tmp_path / "r"),
                                        "--set", "epoch=3"])
    assert result.exit_code != 0
    assert "unknown option(s) ['epoch']" in str(result.exception)
    assert not (tmp_path / "r").exists()  # nothing written for a bad config


@pytest.mark.parametrize(("typo", "message"), [
    ("model.kwargs.chanels=[4, 8, 4]", "did you mean 'channels'"),
    ("loss.name=tsn", "Did you mean 'tsan'"),
    ("loss.kwargs.beta=1", "takes none"),
    ("optim.name=adamm", "Did you mean 'adam'"),
    ("scheduler.name=cosin", "Did you mean 'cosine'"),
    ("model.kwargs.channels=[4, 8, 8, 8, 8, 8, 8]", "too small for this model"),
])
def test_a_typo_leaves_no_run_folder_and_the_corrected_command_trains(prepared, tmp_path,
                                                                      typo, message):
    run = tmp_path / "r"
    result = CliRunner().invoke(app(), ["train", str(prepared), str(run), *TINY, "--set", typo])
    assert result.exit_code != 0 and message in str(result.exception), result.output
    assert not run.exists()  # checked before anything was written
    result = CliRunner().invoke(app(), ["train", str(prepared), str(run), *TINY])
    assert result.exit_code == 0, result.output
    assert (run / "run.json").is_file()


def test_ages_from_another_cohort_table(prepared, tmp_path):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(prepared, bare)
    (bare / "cohort.tsv").rename(tmp_path / "ages.tsv")
    result = CliRunner().invoke(app(), ["train", str(bare), str(tmp_path / "r"), *TINY])
    assert result.exit_code != 0 and "--cohort" in str(result.exception)
    assert not (tmp_path / "r").exists()
    result = CliRunner().invoke(app(), ["train", str(bare), str(tmp_path / "r"), "--cohort",
                                        str(tmp_path / "ages.tsv"), *TINY])
    assert result.exit_code == 0, result.output


def test_predict_mixed_inputs_refused(tmp_path):
    from brainage.errors import BrainAgeError
    from brainage.inference.predictor import Predictor

    with pytest.raises(BrainAgeError, match="mixed kinds"):
        Predictor.__new__(Predictor).predict([tmp_path / "a.nii.gz", tmp_path / "cohort"])


def test_ctrl_c_in_train_says_what_was_kept_and_how_to_resume(prepared, tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "fold-0").mkdir(parents=True)
    (run / "fold-0" / "weights.safetensors").write_bytes(b"x")
    (run / "fold-1" / "checkpoints").mkdir(parents=True)
    (run / "fold-1" / "checkpoints" / "last.ckpt").write_bytes(b"x")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("brainage.api.train", interrupted)
    result = CliRunner().invoke(app(), ["train", str(prepared), str(run), *TINY])
    assert result.exit_code == 130
    assert "kept 1 finished model(s) and the last epoch of 1 model(s) in progress (fold-1)" \
        in result.output
    assert "Resume by running the same command again" in result.output


def test_fine_tune_from_one_member_of_a_run(prepared, tmp_path):
    runner = CliRunner()
    source, tuned = tmp_path / "source", tmp_path / "tuned"
    result = runner.invoke(app(), ["train", str(prepared), str(source), "--folds", "2", *TINY])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app(), ["train", str(prepared), str(tuned), *TINY,
                                   "--init-from", str(source), "--init-member", "fold-1"])
    assert result.exit_code == 0, result.output
    assert f"initialised from {source.resolve()} (member fold-1)" in result.output
    record = json.loads((tuned / "run.json").read_text())["init_from"]
    assert record["member"] == "fold-1" and record["age_bins"] is None  # (0, 100) covers it
    result = runner.invoke(app(), ["train", str(prepared), str(tmp_path / "b"), *TINY,
                                   "--init-from", "bundled"])
    assert result.exit_code != 0 and any(  # none bundled, or the bundled IXI network's spec
        text in str(result.exception) for text in ("no bundled model", "classical model",
                                                   "another preprocessing spec"))
    assert not (tmp_path / "b").exists()
