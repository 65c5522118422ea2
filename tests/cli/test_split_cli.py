"""``brainage split``: writes the file once, keeps an existing one, passes options through."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.split import register
from brainage.data.cohort import Cohort


def make_cohort(n: int = 30) -> Cohort:
    rng = np.random.default_rng(0)
    return Cohort(pd.DataFrame({
        "participant_id": [f"sub-{i:02d}" for i in range(n)],
        "path": [f"/x/sub-{i:02d}.nii.gz" for i in range(n)],
        "age": rng.uniform(20, 80, n),
        "site": [("A", "B", "C")[i % 3] for i in range(n)],
    }), "cohort.tsv")


def split_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


@pytest.fixture
def app(monkeypatch):
    """A Typer app with only `split`; the cohort loader replaced by an in-memory cohort."""
    calls: list[dict] = []

    def load_cohort(source, **kwargs):
        calls.append({"source": source, **kwargs})
        return make_cohort()

    fake = types.ModuleType("brainage.data.sources")
    fake.load_cohort = load_cohort  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "brainage.data.sources", fake)
    app = split_app()
    app.calls = calls  # type: ignore[attr-defined]
    return app


def test_split_writes_once_and_keeps_the_file(app, tmp_path):
    out = tmp_path / "splits.json"
    runner = CliRunner()
    res = runner.invoke(app, ["split", "cohort.tsv", str(out), "--k", "3", "--val", "0.2"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["method"] == "kfold" and len(data["folds"]) == 3
    assert {"train", "val", "test"} == set(data["folds"][0])
    assert "fold 2" in res.output
    before = out.read_text()
    res = runner.invoke(app, ["split", "cohort.tsv", str(out), "--k", "3", "--val", "0.2"])
    assert res.exit_code == 0 and "kept it" in res.output
    assert out.read_text() == before
    res = runner.invoke(app, ["split", "cohort.tsv", str(out), "--k", "4", "--force"])
    assert res.exit_code == 0 and len(json.loads(out.read_text())["folds"]) == 4


def test_split_sites_passes_test_sites(app, tmp_path):
    out = tmp_path / "splits.json"
    res = CliRunner().invoke(
        app, ["split", "cohort.tsv", str(out), "--method", "sites", "--test-sites", "B,C"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["params"]["test_sites"] == ["B", "C"] and len(data["folds"][0]["test"]) == 20
    assert app.calls[-1]["require_site"] is True


def test_split_unknown_method_is_a_user_error(app, tmp_path):
    res = CliRunner().invoke(app, ["split", "cohort.tsv", str(tmp_path / "s.json"), "-m", "kfod"])
    assert res.exit_code != 0 and "Did you mean 'kfold'" in str(res.exception)


def test_split_reads_a_cohort_table(tmp_path):
    pytest.importorskip("brainage.data.sources")
    make_cohort().to_tsv(tmp_path / "cohort.tsv")
    out = tmp_path / "splits.json"
    res = CliRunner().invoke(split_app(), ["split", str(tmp_path / "cohort.tsv"), str(out),
                                           "-m", "holdout", "--val", "0.2", "--test", "0.2"])
    assert res.exit_code == 0, res.output
    assert [len(v) for v in json.loads(out.read_text())["folds"][0].values()] == [18, 6, 6]
