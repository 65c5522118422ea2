"""Fixtures of the report tests: one evaluation folder and one run folder per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from report_builders import make_evaluation, make_predictions, make_qc, make_run


@pytest.fixture(scope="session")
def evaluation_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete evaluation folder (groups, longitudinal, per-site, per-set)."""
    return make_evaluation(tmp_path_factory.mktemp("eval") / "evaluation")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with predictions but no evaluation."""
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="session")
def full_report(tmp_path_factory: pytest.TempPathFactory, run_dir: Path,
                evaluation_dir: Path) -> Path:
    """The richest report: a run folder with an evaluation/ subfolder and a QC table.

    Scans sub-001 (registration_failure, truncated_fov) and sub-002 (truncated_fov) are
    flagged.
    """
    from brainage.reporting.report import write_report

    root = tmp_path_factory.mktemp("full")
    run = root / "run"
    shutil.copytree(run_dir, run)
    shutil.copytree(evaluation_dir, run / "evaluation")
    qc = make_qc(root / "qc.tsv", make_predictions(), {
        "sub-001": "registration_failure;truncated_fov", "sub-002": "truncated_fov"})
    return write_report(run, root / "out" / "report.html", qc=qc, n_boot=40)
