"""The public API's results: the evaluation of a predictions table and the HTML report
(:mod:`brainage.api`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from brainage.api._common import PathLike

if TYPE_CHECKING:
    from brainage.evaluation.pipeline import EvaluationResult


def evaluate(predictions: PathLike, output: PathLike, *, correction: PathLike | None = None,
             method: str | None = None, fit_on: str | None = None, per_site: bool = False,
             n_boot: int = 1000, seed: int = 0, folds: int = 5, reference: str = "control",
             n_splits: int = 100) -> EvaluationResult:
    """Metrics with bootstrap confidence intervals, bias correction, per set/site/age bin.

    Writes the evaluation folder and returns its result (``format_summary`` prints it;
    :func:`brainage.evaluation.pipeline.run_evaluation`).

    Args:
        predictions: Predictions TSV (of ``brainage train``, ``predict`` or :func:`predict`;
            :mod:`brainage.data.predictions`).
        output: Folder to (re)create; refused if it holds files other than a previous
            evaluation.
        correction: Run folder or JSON file with a fitted bias correction.
        method: Correction method when fitting here (`fit_on`) or cross-fitting.
        fit_on: Fit the correction on the rows matching ``COLUMN==VALUE`` (e.g.
            ``group==control``).
        per_site: One correction per site (when fitting here or cross-fitting).
        n_boot: Bootstrap resamples for intervals.
        seed: Seed of bootstrap, cross-fitting folds and classification splits.
        folds: Cross-fitting folds.
        reference: Reference group for the group analysis.
        n_splits: Stratified shuffle splits of the group classification.

    Raises:
        BrainAgeError: invalid input or options; nothing is written.
    """
    from brainage.evaluation.pipeline import run_evaluation

    return run_evaluation(predictions, output, correction=correction, method=method,
                          fit_on=fit_on, per_site=per_site, n_boot=n_boot, seed=seed,
                          folds=folds, reference=reference, n_splits=n_splits)


def report(source: PathLike, output: PathLike, *, qc: PathLike | None = None,
           title: str | None = None, n_boot: int = 1000, seed: int = 0) -> Path:
    """One self-contained HTML page for a run or evaluation folder (figures embedded;
    :func:`brainage.reporting.report.write_report`).

    Args:
        source: Run folder, evaluation folder, or run folder with an ``evaluation/``.
        output: HTML file to write (replaced atomically).
        qc: Optional QC table (``participant_id``, ``session``, flags).
        title: Page title (default: from the folder name).
        n_boot: Bootstrap resamples when metrics have to be computed here.
        seed: Seed of that bootstrap.

    Returns:
        The written file.

    Raises:
        BrainAgeError: nothing reportable in `source`, or `output` is a folder.
    """
    from brainage.reporting.report import write_report

    return write_report(source, output, qc=qc, title=title, n_boot=n_boot, seed=seed)
