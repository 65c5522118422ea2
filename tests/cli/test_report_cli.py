"""``brainage report`` from the command line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import typer
from typer.testing import CliRunner

from brainage.cli.report import register
from brainage.errors import BrainAgeError


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test shell."""

    register(app)
    return app


def _invoke(*args):
    return CliRunner().invoke(_app(), ["report", *map(str, args)])


def _predictions(path, n=30, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(n)], "age": age.round(2),
                  "predicted_age": (age + rng.normal(0, 4, n)).round(2),
                  "site": ["AB"[i % 2] for i in range(n)],
                  "qc_flags": ["truncated_fov" if i == 3 else "n/a" for i in range(n)]}
                 ).to_csv(path, sep="\t", index=False)
    return path


def test_report_of_a_predictions_folder(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    _predictions(src / "predictions.tsv")
    out = tmp_path / "out" / "report.html"
    res = _invoke(src, "-o", out, "--title", "My cohort", "--n-boot", "20")
    assert res.exit_code == 0, res.output
    assert f"Wrote {out}" in res.output
    html = out.read_text(encoding="utf-8")
    assert "<title>My cohort</title>" in html and "<strong>1</strong> of 30 scans flagged" in html
    assert html.count('<img src="data:image/png;base64,') == 5


def test_qc_option_and_errors(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    _predictions(src / "predictions.tsv")
    qc = tmp_path / "qc.tsv"
    qc.write_text("participant_id\tflags\nsub-01\tmask_disagreement\nsub-02\tn/a\n")
    out = tmp_path / "r.html"
    assert _invoke(src, "-o", out, "--qc", qc, "--n-boot", "0").exit_code == 0
    assert "mask_disagreement" in out.read_text(encoding="utf-8")
    empty = tmp_path / "empty"
    empty.mkdir()
    res = _invoke(empty, "-o", tmp_path / "x.html")
    assert isinstance(res.exception, BrainAgeError)
    assert "nothing to report" in str(res.exception) and "metrics.json" in str(res.exception)
    bad_qc = tmp_path / "bad.tsv"
    bad_qc.write_text("subject\tflags\ns1\tx\n")
    res = _invoke(src, "-o", tmp_path / "y.html", "--qc", bad_qc)
    assert isinstance(res.exception, BrainAgeError) and "participant_id" in str(res.exception)
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()
