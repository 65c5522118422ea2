"""The BIDS-App output folder: its ``dataset_description.json``, subject paths and sidecars.

::

    <output_dir>/dataset_description.json         written once (DatasetType derivative)
    <output_dir>/sub-<label>/anat/...              preprocessed T1w, brain mask, saliency maps
    <output_dir>/sub-<label>/sub-<label>_predictions.tsv (+ .json: every column, its unit)
    <output_dir>/group/                            the group level (predictions, evaluation, report)
<output_dir>/README, .bidsignore                the tables and the group folder are not BIDS files

The folder passes the official BIDS validator (``tests/test_bids_validator.py``; the
warnings it gives, and why each is accepted, are in ``docs/bids.md``).

A subject folder appears whole (built under a temporary name, then renamed), so a subject
folder with its predictions table is a finished subject.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from brainage import __version__
from brainage.data.labels import scan_stem
from brainage.errors import InputError
from brainage.io import write_json
from brainage.preprocessing.derivatives import write_bidsignore, write_readme

DESCRIPTION = "dataset_description.json"
BIDS_VERSION = "1.9.0"
#: brainage's files that BIDS does not define (the output folder's ``.bidsignore``): the
#: prediction and region tables (with their column sidecars), the group level, and the
#: log-Jacobian map of a SyN spec.
IGNORE = ("/group", "*_predictions.tsv", "*_predictions.json", "*_desc-saliency_regions.tsv",
          "*_desc-saliency_regions.json", "*_desc-logjacobian_map.nii.gz",
          "*_desc-logjacobian_map.json")
README = """brainage BIDS App outputs: brain age from T1w MRI (research use only).

Per subject: the preprocessed T1w, brain mask (and tissue maps) on the model's template
grid, saliency maps, and sub-<label>_predictions.tsv (columns in its .json sidecar).
group/ holds the group level: every subject's predictions, the evaluation (metrics with
confidence intervals, bias correction) and report.html. The tables and group/ are not
files BIDS defines, so .bidsignore lists them.
"""
_YEARS = "year"
#: Description and unit (None: no unit) of every column the predictions tables can hold.
COLUMNS: dict[str, tuple[str, str | None]] = {
    "participant_id": ("Participant identifier (sub-<label>).", None),
    "session": ("Session identifier (ses-<label>); n/a for single-session data.", None),
    "run": ("Run index of the T1w image within its session.", None),
    "age": ("Chronological age at the scan, from participants.tsv or sessions.tsv.", _YEARS),
    "predicted_age": ("Brain age predicted by the model (uncorrected).", _YEARS),
    "gap": ("Brain-age gap: predicted_age - age (uncorrected).", _YEARS),
    "sex": ("Sex: F (female) or M (male).", None),
    "site": ("Acquisition site.", None),
    "group": ("Study group, e.g. control or patient.", None),
    "set": ("Evaluation set the scan belongs to.", None),
    "fold": ("Cross-validation fold.", None),
    "stage1_age": ("Stage-1 predicted age of a cascade model.", _YEARS),
    "ensemble_sd": ("Standard deviation of the fold models' predicted ages.", _YEARS),
    "corrected_age": ("Bias-corrected predicted age.", _YEARS),
    "corrected_gap": ("Bias-corrected brain-age gap: corrected_age - age.", _YEARS),
    "interval_low": ("Lower end of the prediction interval of predicted_age.", _YEARS),
    "interval_high": ("Upper end of the prediction interval of predicted_age.", _YEARS),
    "qc_flags": ("Preprocessing quality-control flags, ';'-separated; n/a when clean.", None),
    "ood": ("Out-of-distribution flags, e.g. age_out_of_range (outside the training ages).",
            None),
    "error": ("Why the scan was not predicted; n/a when it was.", None),
}


#: Columns of ``longitudinal.tsv`` (:func:`brainage.evaluation.longitudinal.gap_change_rates`);
#: ``<gap>_first`` and ``<gap>_rate`` are described by :func:`longitudinal_columns`.
LONGITUDINAL_COLUMNS: dict[str, tuple[str, str | None]] = {
    "participant_id": COLUMNS["participant_id"],
    "n_sessions": ("Sessions with an age and a prediction.", None),
    "age_first": ("Age at the first session.", _YEARS),
    "age_last": ("Age at the last session.", _YEARS),
    "follow_up_years": ("age_last - age_first.", _YEARS),
    **{c: COLUMNS[c] for c in ("group", "site", "sex", "set")},
}


def longitudinal_columns(table: pd.DataFrame) -> dict[str, tuple[str, str | None]]:
    """Descriptions of a longitudinal table's columns, the per-gap ones included."""
    out = dict(LONGITUDINAL_COLUMNS)
    for col in table.columns:
        for end, text, unit in (("_first", "{} at the first session.", _YEARS),
                                ("_rate", "Within-subject slope of {} against age.",
                                 "year/year")):
            gap = col.removesuffix(end)
            if col.endswith(end) and gap in COLUMNS:
                out[col] = (text.format(gap), unit)
    return out


def subject_name(participant_id: str) -> str:
    """``sub-<label>`` as the output folder and file names write it (alphanumeric label)."""
    return scan_stem(participant_id)


def predictions_path(out: Path, participant_id: str) -> Path:
    """``<out>/sub-<label>/sub-<label>_predictions.tsv``."""
    name = subject_name(participant_id)
    return out / name / f"{name}_predictions.tsv"


def is_done(out: Path, participant_id: str) -> bool:
    """The subject's folder is complete (it appears whole, with its predictions table)."""
    return predictions_path(out, participant_id).is_file()


def column_sidecar(table: pd.DataFrame,
                   columns: dict[str, tuple[str, str | None]] | None = None) -> dict[str, Any]:
    """The BIDS JSON sidecar of a table: each column's description and unit (from
    `columns`, default :data:`COLUMNS`)."""
    known = COLUMNS if columns is None else columns
    out: dict[str, Any] = {}
    for col in table.columns:
        text, unit = known.get(col, (f"Column {col!r} carried over from participants.tsv.",
                                     None))
        out[col] = {"Description": text, **({"Units": unit} if unit else {})}
    return out


def write_sidecar(table_path: Path, table: pd.DataFrame,
                  columns: dict[str, tuple[str, str | None]] | None = None) -> Path:
    """Write ``<table>.json`` next to a TSV (atomically); returns its path."""
    path = table_path.with_suffix(".json")
    write_json(path, column_sidecar(table, columns))
    return path


def description(bids_dir: Path, run: Path, spec_hash: str) -> dict[str, Any]:
    """The ``dataset_description.json`` of an output folder for one model."""
    return {
        "Name": "brainage: brain age from T1w MRI",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "brainage", "Version": __version__,
            "Description": "brainage BIDS App: participant level prepare -> predict -> "
                           "explain; group level collate -> evaluate -> report "
                           f"(preprocessing spec {spec_hash})"}],
        "SourceDatasets": [{"URL": Path(bids_dir).resolve().as_uri()}],
        "BrainAgeModel": {"Run": str(Path(run).resolve()), "PreprocessingSpecHash": spec_hash},
    }


def ensure_description(out: Path, bids_dir: Path, run: Path, spec_hash: str) -> Path:
    """Write ``dataset_description.json`` once; an existing valid one is left as it is.

    Several processes may start at once: each writes a private temporary file and links it
    to the final name, which only the first link creates.

    Raises:
        InputError: the existing file is not a brainage derivative of the same model.
    """
    out.mkdir(parents=True, exist_ok=True)
    path = out / DESCRIPTION
    if not path.is_file():
        tmp = out / f".{DESCRIPTION}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(description(bids_dir, run, spec_hash), indent=2) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process linked first: check its file below
        except OSError:  # no hard links here: replace (every writer writes the same text)
            if not path.exists():
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    check_description(out, run, spec_hash)
    write_readme(out, README)
    write_bidsignore(out, IGNORE)
    return path


def read_description(out: Path) -> dict[str, Any]:
    """The output folder's ``dataset_description.json``, checked to be brainage's.

    Raises:
        InputError: missing, unreadable, or not a brainage derivative.
    """
    path = out / DESCRIPTION
    fix = ("use a new output folder, or remove the file if the folder holds nothing else "
           "(a participant-level run writes it)")
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found; expected the output folder of the participant "
                         "level. Fix: run `brainage BIDS_DIR OUTPUT_DIR participant` first."
                         ) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc}); expected JSON. Fix: {fix}.") from None
    info = info if isinstance(info, dict) else {}
    made_by = [g.get("Name") for g in info.get("GeneratedBy", []) if isinstance(g, dict)]
    if info.get("DatasetType") != "derivative" or "brainage" not in made_by:
        raise InputError(f"{path}: got DatasetType {info.get('DatasetType')!r} generated by "
                         f"{made_by}; expected a brainage derivative. Fix: {fix}.")
    return info


def check_description(out: Path, run: Path, spec_hash: str) -> None:
    """Refuse an output folder that holds another model's outputs.

    Raises:
        InputError: the recorded model (run folder or preprocessing spec) differs.
    """
    model = read_description(out).get("BrainAgeModel", {})
    want = {"Run": str(Path(run).resolve()), "PreprocessingSpecHash": spec_hash}
    if {k: model.get(k) for k in want} != want:
        raise InputError(
            f"{out / DESCRIPTION}: the folder holds outputs of model {model.get('Run')!r} "
            f"(spec {str(model.get('PreprocessingSpecHash'))[:12]}); expected {want['Run']!r} "
            f"(spec {spec_hash[:12]}). Fix: use another output folder for another model, or "
            "pass the same --model.")


def remove_stale(out: Path, name: str) -> None:
    """Remove leftovers ``.<name>.tmp-<pid>`` of killed runs (call with the subject locked)."""
    import shutil

    for tmp in out.glob(f".{name}.tmp-*"):
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
