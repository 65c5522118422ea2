"""The HTML report from evaluation and run folders: sections, embedded figures, no network."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from report_builders import decode_png, make_predictions, make_run

from brainage.errors import BrainAgeError
from brainage.reporting.qc import normalise_qc, split_flags
from brainage.reporting.report import write_report
from brainage.reporting.sources import collect_inputs
from brainage.reporting.tables import format_interval

INTERVAL = re.compile(r"-?\d+\.\d{2,3} \[-?\d+\.\d{2,3}, -?\d+\.\d{2,3}\]")
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def render(source: Path, tmp_path: Path, **kwargs) -> str:
    out = write_report(source, tmp_path / "report.html", n_boot=40, **kwargs)
    assert out == tmp_path / "report.html" and out.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    return out.read_text(encoding="utf-8")


def section(html: str, name: str) -> str:
    """The text of one ``<section id=name>``."""
    m = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert m, f"no section {name}"
    return m.group(1)


def assert_self_contained(html: str) -> None:
    """No script, stylesheet link, frame or URL: everything is inline or a data URI."""
    assert "<script" not in html and "<link" not in html and "<iframe" not in html
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import|url\(", html, re.I)
    for m in re.finditer(r'(?:src|href)="([^"]*)"', html):
        assert m.group(1).startswith(("data:image/png;base64,", "#")), m.group(1)


def test_format_interval():
    assert format_interval({"estimate": 2.312, "ci_low": 2.1, "ci_high": 2.554}) == \
        "2.31 [2.10, 2.55]"
    assert format_interval({"estimate": 0.5, "ci_low": None, "ci_high": None}, 3) == "0.500"
    assert format_interval({"estimate": None, "ci_low": 1, "ci_high": 2}) == "n/a"
    assert format_interval(None) == "n/a" and format_interval(float("nan")) == "n/a"


def test_evaluation_folder_report(evaluation_dir, tmp_path):
    html = render(evaluation_dir, tmp_path, title="Cohort <A> & B")
    assert_self_contained(html)
    assert "Cohort &lt;A&gt; &amp; B" in html  # escaped
    assert "Research use only" in html and "not for diagnosis" in html
    images = IMG.findall(html)
    assert len(images) == 5  # histogram, scatter, gap vs age, sites, age bins
    for data in images:
        decode_png(base64.b64decode(data))
    metrics = section(html, "metrics")
    assert "artificially good" in metrics and "cross-fitted" in metrics
    assert len(INTERVAL.findall(metrics)) >= 3 * 2 * 7  # 3 sets, both versions, 7 metrics
    for name in ("overall", "internal", "external"):
        assert f"Set: {name}" in metrics
    assert "patient vs control" in section(html, "groups")
    assert "corrected_gap" in section(html, "longitudinal")
    data = section(html, "data")
    assert "A (" in data and "internal (" in data
    for absent in ("qc", "model-card", "preprocessing"):
        assert "Not available" in section(html, absent)


def test_run_folder_without_evaluation_is_evaluated_in_memory(run_dir, tmp_path):
    html = render(run_dir, tmp_path)
    assert_self_contained(html)
    assert len(IMG.findall(html)) == 5
    metrics = section(html, "metrics")
    assert "computed for this report from predictions.tsv" in metrics
    assert "Set: test" in metrics and "Set: val" in metrics and INTERVAL.search(metrics)
    assert "fitted on the val set" in metrics and "optimistic" in metrics
    card = section(html, "model-card")
    assert "Intended use" in card and "sfcn" in card and "Training data" in card
    prep = section(html, "preprocessing")
    spec_hash = collect_inputs(run_dir, n_boot=0).preprocessing["hash"]
    assert re.search(rf'id="spec-hash">{spec_hash}<', prep) and "MNI152NLin2009aSym" in prep
    assert "Not available" in section(html, "groups")


def test_run_with_evaluation_subfolder(full_report):
    run = full_report.parent.parent / "run"
    inputs = collect_inputs(run, n_boot=0)
    assert inputs.kind == "run + evaluation"
    assert inputs.predictions_file == "evaluation/predictions_corrected.tsv"
    assert inputs.group_analysis is not None and inputs.model_card is not None
    html = full_report.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert len(IMG.findall(html)) == 5
    metrics = section(html, "metrics")
    assert "evaluation folder evaluation/" in metrics and "cross-fitted" in metrics
    assert "fitted on the val set" not in metrics  # the run's correction was not used here
    assert "patient vs control" in section(html, "groups")
    assert "Intended use" in section(html, "model-card")
    assert "Specification hash" in section(html, "preprocessing")


def test_run_without_predictions_shows_point_estimates(tmp_path):
    run = make_run(tmp_path / "run", with_predictions=False)
    html = render(run, tmp_path)
    assert IMG.findall(html) == []
    assert section(html, "figures").count("Not available") == 5
    metrics = section(html, "metrics")
    assert "point estimates" in metrics and "Set: test" in metrics
    assert not INTERVAL.search(metrics) and re.search(r"<td class=\"num\">\d+\.\d\d</td>", metrics)
    assert "Not available: no predictions table" in section(html, "data")


def test_partial_or_broken_optional_files_do_not_crash(evaluation_dir, tmp_path):
    folder = tmp_path / "ev"
    shutil.copytree(evaluation_dir, folder)
    for name in ("group_analysis.json", "predictions_corrected.tsv", "longitudinal.tsv"):
        (folder / name).unlink()
    (folder / "model_card.json").write_text("{not json")
    html = render(folder, tmp_path / "out")
    assert len(IMG.findall(html)) == 1  # the age-binned MAE comes from metrics.json
    assert "model_card.json could not be read" in section(html, "notes")
    assert "Not available" in section(html, "groups") and "Set: overall" in html


def test_nothing_reportable_names_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(BrainAgeError, match=r"nothing to report.*metrics\.json.*predictions"):
        write_report(tmp_path / "empty", tmp_path / "r.html")
    with pytest.raises(BrainAgeError, match="folder not found"):
        write_report(tmp_path / "missing", tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_output_must_be_a_file(evaluation_dir, tmp_path):
    with pytest.raises(BrainAgeError, match="is a folder"):
        write_report(evaluation_dir, tmp_path)


def test_qc_table_lists_flagged_scans_only(full_report):
    part = section(full_report.read_text(encoding="utf-8"), "qc")
    assert f"<strong>2</strong> of {len(make_predictions())} scans flagged" in part
    assert "truncated_fov</code> (2)" in part and "registration_failure, truncated_fov" in part
    assert "sub-001" in part and "sub-002" in part and "sub-003" not in part
    assert "qc.tsv" in part


def test_qc_from_prepared_folder_named_in_the_run(tmp_path):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    pd.DataFrame({"participant_id": ["sub-000", "sub-001"], "session": ["ses-0", "ses-0"],
                  "status": ["ok", "failed"], "qc_flags": ["n/a", "implausible_brain_volume"]}
                 ).to_csv(prepared / "index.tsv", sep="\t", index=False)
    run = make_run(tmp_path / "run", prepared=prepared)
    inputs = collect_inputs(run, n_boot=0)
    assert inputs.qc_origin == str(prepared / "index.tsv")
    assert inputs.qc["flags"].tolist() == ["", "implausible_brain_volume;status=failed"]


def test_qc_from_predictions_column(tmp_path):
    df = make_predictions(n=20)
    df["qc_flags"] = pd.NA
    df.loc[3, "qc_flags"] = "truncated_fov"
    (tmp_path / "predictions.tsv").write_text(df.to_csv(sep="\t", index=False, na_rep="n/a"))
    inputs = collect_inputs(tmp_path, n_boot=0)
    assert inputs.qc is not None and (inputs.qc["flags"] != "").sum() == 1
    assert inputs.metrics is not None  # evaluated in memory (cross-fitted correction)


def test_qc_formats():
    assert split_flags("a; b|c") == ["a", "b", "c"]
    assert split_flags("['a', 'b']") == ["a", "b"] and split_flags(None) == []
    assert split_flags("n/a") == [] and split_flags(["x"]) == ["x"]
    table = pd.DataFrame({"participant_id": ["sub-1", "sub-2"], "truncated_fov": ["true", "0"],
                          "similarity": ["0.5", "0.1"]})
    assert normalise_qc(table)["flags"].tolist() == ["truncated_fov", ""]
    with pytest.raises(BrainAgeError, match="no QC flags found"):
        normalise_qc(table.drop(columns="truncated_fov"))
    with pytest.raises(BrainAgeError, match="participant_id"):
        normalise_qc(table.rename(columns={"participant_id": "id"}))


def test_older_preprocessing_file_name_is_read(tmp_path):
    (tmp_path / "preprocessing.json").write_text('{"spec": {"template": "T"}, "hash": "abc"}')
    inputs = collect_inputs(tmp_path, n_boot=0)
    assert inputs.preprocessing == {"spec": {"template": "T"}, "hash": "abc"}
    html = render(tmp_path, tmp_path / "out")
    assert 'id="spec-hash">abc<' in html and "Not available" in section(html, "metrics")
