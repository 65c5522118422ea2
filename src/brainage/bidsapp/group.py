"""BIDS-App group level: collate the subjects' predictions, evaluate, report.

Writes ``<output_dir>/group/`` whole (built under a temporary name, then renamed; a failed
run leaves the previous one, if any, untouched)::

    group/predictions.tsv (+ .json)    every finished subject's rows
    group/evaluation/                  brainage evaluate (metrics, bias correction, groups)
    group/evaluation/predictions_corrected.tsv, longitudinal.tsv (each + .json), metrics.tsv
    group/report.html                  brainage report of the evaluation

Every table but ``metrics.tsv`` (see :func:`_describe`) has a JSON sidecar describing its
columns, as BIDS asks of tables (the folder itself is in the output's ``.bidsignore``: BIDS
defines no group-level files).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.bidsapp import outputs
from brainage.errors import InputError
from brainage.io import atomic_path

GROUP = "group"


@dataclass
class GroupSummary:
    """What the group level wrote."""

    folder: Path
    subjects: int = 0
    scans: int = 0
    evaluation: Any = None
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self) -> str:
        """A short report for the terminal."""
        from brainage.evaluation.pipeline import format_summary

        lines = [f"group level: {self.scans} scan(s) of {self.subjects} subject(s) -> "
                 f"{self.folder / 'predictions.tsv'}"]
        if self.evaluation is not None:
            lines += [format_summary(self.evaluation), f"report {self.folder / 'report.html'}"]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def collate(out: Path, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Every finished subject's predictions table, one after the other (sorted by subject).

    Raises:
        InputError: no finished subject (or none of `labels`).
    """
    from brainage.io import read_table

    wanted = None if labels is None else {outputs.subject_name(lab) for lab in labels}
    paths = [p for p in sorted(out.glob("sub-*/sub-*_predictions.tsv"))
             if wanted is None or p.parent.name in wanted]
    if not paths:
        raise InputError(f"{out}: no finished subject{' of the given labels' if labels else ''}"
                         " (sub-<label>/sub-<label>_predictions.tsv); expected the output of "
                         "the participant level. Fix: run `brainage BIDS_DIR OUTPUT_DIR "
                         "participant` first.")
    return pd.concat([read_table(p) for p in paths], ignore_index=True)


def unfinished(cohort: Any, out: Path) -> list[str]:
    """Subjects of the dataset without a finished output folder."""
    ids = sorted(set(cohort.table["participant_id"]))
    return [outputs.subject_name(p) for p in ids if not outputs.is_done(out, p)]


def run_group(out: Path, cohort: Any = None, labels: Sequence[str] | None = None,
              **evaluate: Any) -> GroupSummary:
    """Collate, evaluate (when ages are known) and report into ``<out>/group``.

    Args:
        out: The participant level's output folder.
        cohort: The dataset's cohort, to name subjects not processed yet (optional).
        labels: Only these participants.
        **evaluate: Options of :func:`brainage.evaluation.pipeline.run_evaluation`
            (``fit_on``, ``method``, ``correction``, ``per_site``, ``n_boot``, ``seed``,
            ``reference``).

    Raises:
        BrainAgeError: not a brainage output folder, no finished subject, bad options.
    """
    outputs.read_description(out)
    table = collate(out, labels)
    summary = GroupSummary(out / GROUP, subjects=table["participant_id"].nunique(),
                           scans=len(table))
    missing = unfinished(cohort, out) if cohort is not None else []
    if missing:
        summary.notes.append(f"{len(missing)} subject(s) of the dataset have no finished "
                             f"participant-level output and are left out: "
                             f"{', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}")
    with atomic_path(out / GROUP) as tmp:
        tmp.mkdir()
        summary.evaluation = _write(tmp, table, summary.notes, evaluate)
    if summary.evaluation is not None:  # it was written at the temporary name
        summary.evaluation.output_dir = out / GROUP / "evaluation"
    return summary


def _write(folder: Path, table: pd.DataFrame, notes: list[str], evaluate: dict[str, Any]
           ) -> Any:
    """Write the group folder's files; returns the evaluation result (None without ages)."""
    from brainage.evaluation.pipeline import run_evaluation
    from brainage.evaluation.predictions import write_predictions
    from brainage.reporting.report import write_report

    path = folder / "predictions.tsv"
    write_predictions(path, table)
    outputs.write_sidecar(path, pd.read_csv(path, sep="\t", nrows=0))
    predicted = table["predicted_age"].notna() if "predicted_age" in table else table.index < 0
    if not (pd.to_numeric(table.loc[predicted, "age"], errors="coerce").notna().any()):
        notes.append("no subject has a known age (participants.tsv): evaluation and report "
                     "skipped")
        return None
    result = run_evaluation(path, folder / "evaluation", **evaluate)
    _describe(folder / "evaluation")
    write_report(folder / "evaluation", folder / "report.html",
                 title="brainage group report", n_boot=evaluate.get("n_boot", 1000),
                 seed=evaluate.get("seed", 0))
    return result


def _describe(evaluation: Path) -> None:
    """The column sidecars of the evaluation's tables. ``metrics.tsv`` has none: its
    sidecar's name is taken by ``metrics.json``, the evaluation's full record (the same
    numbers; its columns are described in docs/bids.md)."""
    def header(name: str) -> pd.DataFrame:
        return pd.read_csv(evaluation / name, sep="\t", nrows=0)

    outputs.write_sidecar(evaluation / "predictions_corrected.tsv",
                          header("predictions_corrected.tsv"))
    if (evaluation / "longitudinal.tsv").is_file():
        table = header("longitudinal.tsv")
        outputs.write_sidecar(evaluation / "longitudinal.tsv", table,
                              outputs.longitudinal_columns(table))
