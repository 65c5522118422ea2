"""The BIDS-App group level on hand-written subject folders (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainage.bidsapp.group import run_group
from brainage.bidsapp.outputs import description, predictions_path, write_sidecar
from brainage.data.cohort import Cohort
from brainage.data.predictions import write_predictions


@pytest.fixture
def out(tmp_path):
    """An output folder with 24 finished subjects: 20 controls, 4 patients (+5 y gap)."""
    root = tmp_path / "out"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps(
        description(tmp_path / "bids", tmp_path / "run", "f" * 64)))
    rng = np.random.default_rng(0)
    for i in range(24):
        pid, age = f"sub-{i:03d}", float(rng.uniform(20, 80))
        patient = i >= 20
        table = pd.DataFrame({"participant_id": [pid], "session": [pd.NA], "age": [age],
                              "predicted_age": [age + rng.normal(5 if patient else 0, 2)],
                              "sex": ["FM"[i % 2]], "site": ["AB"[i % 2]],
                              "group": ["patient" if patient else "control"]})
        table["gap"] = table["predicted_age"] - table["age"]
        path = predictions_path(root, pid)
        path.parent.mkdir()
        write_predictions(path, table)
        write_sidecar(path, table)
    return root


def test_group_fits_the_correction_on_controls_and_reports(out):
    cohort = Cohort(pd.DataFrame({"participant_id": [f"sub-{i:03d}" for i in range(25)],
                                  "path": [f"/x/{i}.nii.gz" for i in range(25)]}))
    summary = run_group(out, cohort, fit_on="group==control", n_boot=20)
    group = out / "group"
    table = pd.read_csv(group / "predictions.tsv", sep="\t")
    assert len(table) == 24 and table["participant_id"].is_unique
    sidecar = json.loads((group / "predictions.json").read_text())
    assert set(sidecar) == set(table.columns) and sidecar["gap"]["Units"] == "year"
    fitted = json.loads((group / "evaluation" / "bias_correction.json").read_text())
    assert fitted["n_subjects"] == 20  # fitted here, on the controls only
    assert set(fitted["fitted_ids"]) == {f"sub-{i:03d}" for i in range(20)}
    assert "20 subjects with group==control" in summary.format()
    corrected = pd.read_csv(group / "evaluation" / "predictions_corrected.tsv", sep="\t")
    assert set(json.loads((group / "evaluation" / "predictions_corrected.json").read_text())) \
        == set(corrected.columns)
    assert (group / "report.html").stat().st_size > 10_000
    assert summary.evaluation.output_dir == group / "evaluation"  # not the temporary name
    assert any("sub-024" in n and "no finished participant-level output" in n
               for n in summary.notes)
    assert not [p for p in out.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_group_without_ages_writes_the_table_and_says_why_no_evaluation(out):
    for path in out.glob("sub-*/sub-*_predictions.tsv"):
        table = pd.read_csv(path, sep="\t").assign(age=np.nan)
        write_predictions(path, table.drop(columns="gap", errors="ignore"))
    summary = run_group(out, labels=["000", "sub-001"], n_boot=20)
    assert summary.evaluation is None and summary.scans == 2
    assert not (out / "group" / "evaluation").exists()
    assert any("no subject has a known age" in n for n in summary.notes)
