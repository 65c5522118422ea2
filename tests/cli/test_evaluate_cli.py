"""``brainage evaluate`` end to end on small synthetic prediction tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.evaluate import register
from brainage.errors import BrainAgeError, ValidationError
from brainage.evaluation.pipeline import parse_selector


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test shell."""

    register(app)
    return app


def _predictions(path, n=90, groups=True, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        patient = groups and s % 3 == 0
        a0 = rng.uniform(40, 80)
        for k in range(2 if s % 4 == 0 else 1):
            age = a0 + 2.0 * k
            pred = age - 0.3 * age + 15 + 3.0 * patient + rng.normal(0, 3)
            row = {"participant_id": f"sub-{s:03d}", "session": f"ses-{k}", "age": round(age, 2),
                   "predicted_age": round(pred, 2), "sex": "FM"[s % 2], "site": "ABC"[s % 3],
                   "set": "internal" if s % 5 else "external"}
            if groups:
                row["group"] = "patient" if patient else "control"
            rows.append(row)
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def _strict_json(path):
    """Parse JSON, failing on NaN/Infinity (not valid JSON)."""
    def refuse(constant):
        raise AssertionError(f"{path.name} holds {constant}")
    return json.loads(path.read_text(), parse_constant=refuse)


def _invoke(*args):
    return CliRunner().invoke(_app(), ["evaluate", *map(str, args), "--n-boot", "50"])


def test_default_cross_fits_and_writes_everything(tmp_path):
    table = _predictions(tmp_path / "predictions.tsv")
    out = tmp_path / "eval"
    res = _invoke(table, "-o", out)
    assert res.exit_code == 0, res.output
    assert "cross-fitted within this table" in res.output
    assert "[external]" in res.output and "[internal]" in res.output
    names = {p.name for p in out.iterdir()}
    assert names == {"metrics.json", "metrics.tsv", "predictions_corrected.tsv",
                     "group_analysis.json", "longitudinal.tsv"}
    metrics = _strict_json(out / "metrics.json")
    assert metrics["correction"]["source"] == "crossfit"
    assert {"overall", "internal", "external"} <= set(metrics["sets"])
    assert metrics["longitudinal"]["n_subjects"] == 23
    tsv = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert {"uncorrected", "corrected"} == set(tsv["correction"])
    corrected = pd.read_csv(out / "predictions_corrected.tsv", sep="\t")
    assert corrected["corrected_gap"].notna().all()
    groups = _strict_json(out / "group_analysis.json")
    assert groups["difference"]["corrected_gap"]["comparisons"]["patient"]["effect"] > 0
    assert 0.5 < groups["classification"]["patient"]["auc_mean"] <= 1


def test_fit_on_controls_then_reuse_the_stored_correction(tmp_path):
    table = _predictions(tmp_path / "p.tsv", groups=True)
    first = tmp_path / "fit"
    res = _invoke(table, "-o", first, "--fit-on", "group==control", "--method", "cole")
    assert res.exit_code == 0, res.output
    assert "fitted on the 60 subjects with group==control" in res.output
    assert "were used to fit" in res.output  # the controls are corrected too: warned
    stored = json.loads((first / "bias_correction.json").read_text())
    assert stored["params"]["method"] == "cole"
    other = _predictions(tmp_path / "other.tsv", groups=False, seed=1)
    res = _invoke(other, "-o", tmp_path / "reuse", "--correction", first / "bias_correction.json")
    assert res.exit_code == 0, res.output
    metrics = json.loads((tmp_path / "reuse" / "metrics.json").read_text())
    assert metrics["correction"]["source"] == "supplied"
    assert not (tmp_path / "reuse" / "group_analysis.json").exists()


def test_bad_table_fails_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("participant_id\tage\tpredicted_age\nsub-01\t40\toops\nsub-01\t41\t40\n")
    res = _invoke(bad, "-o", tmp_path / "eval")
    assert isinstance(res.exception, ValidationError)
    assert len(res.exception.problems) == 2
    assert not (tmp_path / "eval").exists()
    assert not list(tmp_path.glob(".eval*"))


@pytest.mark.parametrize("extra, message", [
    (["--fit-on", "group=control"], "COLUMN==VALUE"),
    (["--fit-on", "diagnosis==AD"], "no column 'diagnosis'"),
    (["--fit-on", "group==nobody"], "matches no row"),
    (["--correction", "x.json", "--fit-on", "group==control"], "cannot be combined"),
])
def test_bad_options_fail_clearly(tmp_path, extra, message):
    table = _predictions(tmp_path / "p.tsv", n=40)
    res = _invoke(table, "-o", tmp_path / "eval", *extra)
    assert isinstance(res.exception, BrainAgeError)
    assert message in str(res.exception)
    assert not (tmp_path / "eval").exists()


def test_per_site_needs_sites_and_ages_are_needed(tmp_path):
    table = tmp_path / "p.tsv"
    pd.read_csv(_predictions(table, n=40), sep="\t").drop(columns="site").to_csv(
        table, sep="\t", index=False)
    res = _invoke(table, "-o", tmp_path / "eval", "--per-site")
    assert isinstance(res.exception, BrainAgeError) and "site" in str(res.exception)
    no_age = tmp_path / "no_age.tsv"
    no_age.write_text("participant_id\tage\tpredicted_age\nsub-01\tn/a\t40\n")
    res = _invoke(no_age, "-o", tmp_path / "eval")
    assert "nothing to evaluate" in str(res.exception)
    assert not (tmp_path / "eval").exists()


def test_output_folder_with_other_files_is_not_replaced(tmp_path):
    table = _predictions(tmp_path / "p.tsv", n=40, groups=False)
    out = tmp_path / "results"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    res = _invoke(table, "-o", out)
    assert isinstance(res.exception, BrainAgeError)
    assert (out / "precious.txt").read_text() == "keep me"
    again = tmp_path / "eval"
    assert _invoke(table, "-o", again).exit_code == 0
    assert _invoke(table, "-o", again, "--method", "smith").exit_code == 0  # rerun replaces
    metrics = json.loads((again / "metrics.json").read_text())
    assert metrics["correction"]["method"] == "smith"


def test_parse_selector():
    assert parse_selector("group==control") == ("group", "==", "control")
    assert parse_selector(" site != 'A' ") == ("site", "!=", "A")
    for bad in ("group", "group>=3", "__import__('os')==1 or True", "==x", "group=="):
        with pytest.raises(BrainAgeError, match="expected COLUMN==VALUE or COLUMN!=VALUE"):
            parse_selector(bad)


def test_selector_compares_numeric_columns_as_numbers():
    """`is_control==1` selects the rows of a float column (1.0 once the column has gaps)."""
    from brainage.evaluation.pipeline import select_rows

    df = pd.DataFrame({"is_control": [1.0, 0.0, np.nan, 1.0], "site": ["1", "2", "1", "x"]})
    assert select_rows(df, "is_control==1").tolist() == [True, False, False, True]
    assert select_rows(df, "is_control==1.0").tolist() == [True, False, False, True]
    assert select_rows(df, "is_control!=1").tolist() == [False, True, False, False]
    # A text column keeps exact text matching.
    assert select_rows(df, "site==1").tolist() == [True, False, True, False]
    with pytest.raises(BrainAgeError, match="matches no row"):
        select_rows(df, "is_control==2")
