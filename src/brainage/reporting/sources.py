"""Find what a run folder or an evaluation folder holds, and read it for the report.

Every input except one of {predictions, metrics, model card, preprocessing spec} is
optional: what is missing or unreadable becomes a note and the section says "not
available". A run folder with predictions but no evaluation is evaluated in memory with
the evaluation API (:func:`brainage.evaluation.metrics.compute_metrics`).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.errors import BrainAgeError
from brainage.reporting.qc import find_prepared_qc, qc_from_predictions, read_qc

#: Files that make a folder reportable (at least one of them, or an ``evaluation/`` folder).
REPORTABLE = ("metrics.json", "predictions_corrected.tsv", "predictions.tsv",
              "predictions_oof.tsv", "model_card.json", "preprocessing_spec.json",
              "preprocessing.json")
RUN_MARKERS = ("run.json", "model_card.json", "weights.safetensors", "model.json",
               "config.yaml", "splits.json")
#: The preprocessing spec file (``{"spec", "hash"}``), current name first.
PREPROCESSING_FILES = ("preprocessing_spec.json", "preprocessing.json")
PREDICTION_FILES = ("predictions_corrected.tsv", "predictions.tsv", "predictions_oof.tsv")
#: TGB-GAN age-change maps (``desc`` = ``brainage.synthesis.dataset.CHANGE_DESC``).
CHANGE_MAP_GLOB = "space-*_desc-agechange_map.nii.gz"


@dataclass
class ReportInputs:
    """Everything the report can show, each part None when not available.

    Attributes:
        source: The folder given.
        kind: ``evaluation``, ``run``, ``run + evaluation`` or ``predictions``.
        predictions: Predictions table (with corrected columns when available).
        predictions_file: Where the predictions came from.
        metrics: Metrics in the ``metrics.json`` format of ``brainage evaluate``.
        metrics_origin: Where the metrics came from (shown in the report).
        group_analysis: ``group_analysis.json`` of an evaluation.
        model_card: ``model_card.json`` of a run.
        preprocessing: ``{"spec": ..., "hash": ...}``.
        bias_correction: ``bias_correction.json``.
        run_info: ``run.json``.
        qc: Normalised QC table (``participant_id``, ``session``, ``flags``).
        qc_origin: Where the QC table came from.
        change_map: A TGB-GAN age-change map (NIfTI) in the folder, its ``change_map/``, or
            the synthetic dataset the run trained with (model card).
        notes: Problems met while reading (shown in the report).
    """

    source: Path
    kind: str
    predictions: pd.DataFrame | None = None
    predictions_file: str | None = None
    metrics: dict[str, Any] | None = None
    metrics_origin: str | None = None
    group_analysis: dict[str, Any] | None = None
    model_card: dict[str, Any] | None = None
    preprocessing: dict[str, Any] | None = None
    bias_correction: dict[str, Any] | None = None
    run_info: dict[str, Any] | None = None
    qc: pd.DataFrame | None = None
    qc_origin: str | None = None
    change_map: Path | None = None
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        notes.append(f"{path.name} could not be read ({exc}); its section is left out.")
        return None
    if not isinstance(data, dict):
        notes.append(f"{path.name} does not hold a JSON object; its section is left out.")
        return None
    return data


def _is_evaluation(folder: Path) -> bool:
    path = folder / "metrics.json"
    try:
        return path.is_file() and "sets" in json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, TypeError):
        return False


def check_reportable(source: Path) -> None:
    """Raise a clear error unless `source` holds something a report can show.

    Raises:
        BrainAgeError: not a folder, or none of the expected files is there.
    """
    if not source.is_dir():
        raise BrainAgeError(f"{source}: folder not found. Fix: pass a run folder (brainage "
                            "train) or an evaluation folder (brainage evaluate -o DIR).")
    found = [n for n in REPORTABLE if (source / n).is_file()]
    if not found and not _is_evaluation(source / "evaluation"):
        raise BrainAgeError(
            f"{source}: nothing to report. Expected a run folder or an evaluation folder "
            f"holding at least one of {', '.join(REPORTABLE)} (or an evaluation/ subfolder). "
            "Fix: pass the folder written by `brainage train` or `brainage evaluate -o DIR`.")


def collect_inputs(source: str | os.PathLike[str], qc: str | os.PathLike[str] | None = None,
                   n_boot: int = 1000, seed: int = 0) -> ReportInputs:
    """Read everything reportable from a run or evaluation folder.

    Args:
        source: Run folder, evaluation folder, or a run folder with ``evaluation/``.
        qc: Optional QC table (TSV/CSV with ``participant_id`` and flags).
        n_boot: Bootstrap resamples when metrics are computed here.
        seed: Seed of that bootstrap (and of cross-fitting).

    Raises:
        BrainAgeError: nothing reportable in `source`, or the `qc` table is unusable.
    """
    root = Path(source)
    check_reportable(root)
    eval_dir = root if _is_evaluation(root) else (
        root / "evaluation" if _is_evaluation(root / "evaluation") else None)
    is_run = any((root / m).is_file() for m in RUN_MARKERS)
    kind = " + ".join(k for k, present in (("run", is_run), ("evaluation", eval_dir)) if present)
    kind = kind or "predictions"
    inputs = ReportInputs(source=root, kind=kind)
    _read_run_files(root, inputs, is_run)
    if eval_dir is not None:
        _read_evaluation(eval_dir, inputs)
    if inputs.predictions is None:
        _read_predictions(root, inputs)
    if inputs.metrics is None and inputs.predictions is not None:
        _evaluate_in_memory(root, inputs, inputs.predictions, n_boot, seed)
    if inputs.metrics is None and is_run:
        _run_metrics(root, inputs)
    _attach_qc(root, inputs, qc)
    inputs.change_map = find_change_map(root, inputs.model_card)
    return inputs


def find_change_map(root: Path, model_card: dict[str, Any] | None = None) -> Path | None:
    """The first age-change map in `root`, ``root/change_map`` or (for a run trained with
    synthetic subjects) the synthetic dataset named in the model card."""
    places = [root, root / "change_map"]
    synthetic = ((model_card or {}).get("synthetic") or {}).get("path")
    if isinstance(synthetic, str):
        places += [Path(synthetic), Path(synthetic) / "change_map"]
    for where in places:
        found = sorted(where.glob(CHANGE_MAP_GLOB)) if where.is_dir() else []
        if found:
            return found[0]
    return None


def _read_run_files(root: Path, inputs: ReportInputs, is_run: bool) -> None:
    notes = inputs.notes
    inputs.run_info = _read_json(root / "run.json", notes)
    inputs.model_card = _read_json(root / "model_card.json", notes)
    for name in PREPROCESSING_FILES:
        inputs.preprocessing = inputs.preprocessing or _read_json(root / name, notes)
    if inputs.preprocessing is None and inputs.model_card:
        prep = inputs.model_card.get("preprocessing")
        inputs.preprocessing = prep if isinstance(prep, dict) else None
    if is_run:
        inputs.bias_correction = _read_json(root / "bias_correction.json", notes)


def _read_evaluation(folder: Path, inputs: ReportInputs) -> None:
    inputs.metrics = _read_json(folder / "metrics.json", inputs.notes)
    inputs.metrics_origin = f"evaluation folder {folder.name}/ (brainage evaluate)"
    inputs.group_analysis = _read_json(folder / "group_analysis.json", inputs.notes)
    bias = _read_json(folder / "bias_correction.json", inputs.notes)
    if bias is not None:
        inputs.bias_correction = bias
    _read_predictions(folder, inputs)


def _read_predictions(folder: Path, inputs: ReportInputs) -> None:
    from brainage.data.predictions import (
        not_predicted_note,
        read_predictions,
        split_not_predicted,
    )

    for name in PREDICTION_FILES:
        path = folder / name
        if not path.is_file():
            continue
        try:
            inputs.predictions, failed = split_not_predicted(read_predictions(path))
            inputs.notes += [n for n in [not_predicted_note(failed)] if n]
        except BrainAgeError as exc:
            inputs.notes.append(f"{path.name} could not be read; figures are left out. "
                                f"{str(exc).splitlines()[0]}")
            continue
        inputs.predictions_file = f"{folder.name}/{name}" if folder != inputs.source else name
        return


def _evaluate_in_memory(root: Path, inputs: ReportInputs, df: pd.DataFrame, n_boot: int,
                        seed: int) -> None:
    from brainage.evaluation.bias import BiasCorrector
    from brainage.evaluation.correction_source import correct_predictions
    from brainage.evaluation.metrics import compute_metrics

    if not df["age"].notna().any():
        inputs.notes.append("no prediction has a chronological age: no metrics.")
        return
    correction: Any = None
    has_table = "corrected_age" in df and df.loc[df["age"].notna(), "corrected_age"].notna().all()
    if not has_table and (root / "bias_correction.json").is_file():
        try:
            correction = BiasCorrector.load(root / "bias_correction.json")
        except (BrainAgeError, KeyError, TypeError, ValueError) as exc:
            inputs.notes.append(f"bias_correction.json not usable ({exc}); cross-fitting.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corrected, info = correct_predictions(df, correction, seed=seed)
        inputs.metrics = compute_metrics(corrected, info, n_boot=n_boot, seed=seed)
    inputs.notes += [f"warning: {w.message}" for w in caught]
    inputs.predictions = corrected
    inputs.metrics_origin = f"computed for this report from {inputs.predictions_file}"


def _run_metrics(root: Path, inputs: ReportInputs) -> None:
    from brainage.reporting.tables import run_metrics_as_sets

    raw = _read_json(root / "metrics.json", inputs.notes)
    if raw and isinstance(raw.get("uncorrected"), dict):
        inputs.metrics = run_metrics_as_sets(raw)
        inputs.metrics_origin = "run metrics.json (point estimates; no predictions for intervals)"


def _attach_qc(root: Path, inputs: ReportInputs, qc: str | os.PathLike[str] | None) -> None:
    if qc is not None:
        inputs.qc, inputs.qc_origin = read_qc(qc), str(qc)
        return
    found = find_prepared_qc(root, inputs.run_info, inputs.model_card, inputs.notes)
    if found is not None:
        inputs.qc, inputs.qc_origin = found
        return
    if inputs.predictions is not None:
        table = qc_from_predictions(inputs.predictions)
        if table is not None:
            inputs.qc, inputs.qc_origin = table, f"qc_flags column of {inputs.predictions_file}"
