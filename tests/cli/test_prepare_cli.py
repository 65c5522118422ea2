"""``brainage prepare``: a thin shell over run_cohort (the pipeline is faked here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.prepare import register
from brainage.preprocessing import pipeline
from brainage.preprocessing.spec import SPEC_FILE, PreprocessingSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preprocessing"))
from prep_helpers import blob, fake_preprocess, write_nifti  # noqa: E402


@pytest.fixture
def table(tmp_path) -> Path:
    raw = tmp_path / "raw"
    rows = [("sub-01", write_nifti(raw / "a.nii.gz", blob(seed=1)), 30),
            ("sub-02", write_nifti(raw / "b.nii.gz", blob(seed=2)), 40),
            ("sub-03", write_nifti(raw / "c.nii.gz", np.zeros((24, 28, 20), np.float32)), 50)]
    path = tmp_path / "cohort.csv"
    pd.DataFrame([{"participant_id": p, "path": str(f), "age": a} for p, f, a in rows]
                 ).to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def fake(monkeypatch):
    monkeypatch.setattr(pipeline, "preprocess", fake_preprocess)


def _prepare(*args: str):
    app = typer.Typer()
    register(app)

    @app.callback()
    def _main() -> None:  # keep `prepare` a subcommand
        pass

    return CliRunner().invoke(app, ["prepare", *args])


def test_prepare_writes_outputs_and_reports_failures(table, tmp_path):
    out = tmp_path / "out"
    res = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert res.exit_code == 1, res.output  # one scan failed (empty image)
    assert "prepared 3 scan(s)" in res.stdout and "failed  sub-03" in res.stdout
    assert "empty" in res.stdout
    spec = json.loads((out / SPEC_FILE).read_text())
    assert spec["spec"]["grid"]["shape"] == [20, 24, 18]
    index = pd.read_csv(out / "index.tsv", sep="\t")
    assert list(index["status"]) == ["ok", "ok", "failed"]
    again = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert "skipped 2 finished" in again.stdout


def test_participant_labels_and_shards(table, tmp_path):
    res = _prepare(str(table), str(tmp_path / "o1"), "--grid", "8mm:20x24x18",
                   "--participant-label", "01,02", "--no-progress")
    assert res.exit_code == 0 and "of 2 selected" in res.stdout
    res = _prepare(str(table), str(tmp_path / "o2"), "--grid", "8mm:20x24x18",
                   "--shard", "1/3", "--no-progress")
    assert res.exit_code == 0 and "of 1 selected" in res.stdout


def test_usage_errors_exit_2(table, tmp_path):
    res = _prepare(str(table), str(tmp_path / "o"), "--shard", "0/3")
    assert res.exit_code == 2 and "--shard" in res.stderr
    res = _prepare(str(table), str(tmp_path / "o"), "--grid", "tsam")
    assert res.exit_code == 2 and "did you mean 'tsan'" in res.stderr
    res = _prepare(str(table), str(tmp_path / "o"), "--skullstrip", "bet")
    assert res.exit_code == 2 and "skullstrip" in res.stderr


def test_spec_file_and_mixing_refusal(table, tmp_path):
    spec = PreprocessingSpec.create("8mm:20x24x18", normalisation="minmax")
    spec_path = spec.save(tmp_path / "model_spec.json")
    out = tmp_path / "out"
    res = _prepare(str(table), str(out), "--spec", str(spec_path), "--participant-label", "01",
                   "--no-progress")
    assert res.exit_code == 0, res.output
    assert PreprocessingSpec.load(out).hash == spec.hash
    res = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert res.exit_code == 2 and "normalisation" in res.stderr


def test_registered_in_the_main_app():
    from brainage.cli.main import app

    names = {c.name for c in app.registered_commands}
    if "prepare" not in names:
        pytest.skip("prepare is not registered in brainage.cli.main yet")
    res = CliRunner().invoke(app, ["prepare", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--participant-label" in res.stdout
