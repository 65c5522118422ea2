"""What ``predict`` writes: every input scan as a row, and a JSON sidecar saying what is missing.

A scan that could not be predicted (bad header, preprocessing failed, failed in
``prepare``) keeps its ids and age, with ``predicted_age`` n/a and the reason in ``error``
(see :mod:`brainage.data.predictions`). The sidecar ``<table>.json`` records the run,
the counts, the scans not predicted and the notes (e.g. a run without bias correction).
The output path is checked before anything is computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import InputError, one_line
from brainage.io import write_json

_IDS = ("participant_id", "session", "run", "age", "age_source", "age_note", "sex", "site",
        "group")


#: What the sidecar says about the columns that flag or score a scan (when present).
COLUMN_NOTES = {
    "age_source": "which rule gave the age: 'participants.tsv' (the table given with the "
                  "scans), 'PatientAge' or 'dates' (StudyDate - PatientBirthDate) of the "
                  "DICOM header, or 'none'",
    "age_note": "how the age (and sex) was read when not plain: a bare PatientAge read as "
                "years, a fallback to the dates, a disagreement, a table overriding the header",
    "qc_flags": "flags of preprocessing QC (brainage.preprocessing.qc)",
    "ood": "'age_out_of_range' when the age lies outside the training range",
    "embedding_distance": "mean over members of the distance of the scan's features to "
                          "the training scans' (PCA Mahalanobis), divided by the member's "
                          "threshold: the 95th percentile of the training scans' own "
                          "out-of-fold distances; above 1 is flagged",
    "intensity_z": "largest robust z (median / 1.4826 MAD of the training scans) of the "
                   "model input's intensity statistics (p01, p50, p99, mean, sd)",
    "ood_flags": "every warning of the scan, ';'-joined: age_out_of_range, "
                 "embedding_distance, intensity_unusual and the QC flags",
}


class NoteWarning(UserWarning):
    """Something the predictions lack (scans not predicted, a correction the run has not);
    ``brainage predict`` prints these itself and records them in the sidecar."""


def sidecar_path(output: Path) -> Path:
    """``predictions.tsv`` -> ``predictions.json``."""
    return output.with_suffix(".json") if output.suffix else output.with_name(output.name + ".json")


def check_output(output: Path) -> None:
    """Refuse an output path that cannot be written, before any scan is preprocessed.

    Raises:
        BrainAgeError: the path is a folder, lies under a file, or its sidecar is a folder.
    """
    for path in (output, sidecar_path(output)):
        if path.is_dir():
            raise InputError(
                f"-o {path}: is a folder; expected the path of the predictions table to "
                f"write. Fix: name a file, e.g. -o {path / 'predictions.tsv'}.")
    parent = output.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(
            f"-o {output}: {parent} is a file, so nothing can be written under it. "
            "Fix: choose a path in a folder.")


def failure_rows(rows: pd.DataFrame, errors: list[str]) -> pd.DataFrame:
    """Output rows for scans that were not predicted: ids and age kept, the reason in ``error``."""
    out = pd.DataFrame({c: rows[c].to_numpy() for c in _IDS if c in rows}, index=rows.index)
    out["age"] = pd.to_numeric(out["age"], errors="coerce") if "age" in out else np.nan
    out["predicted_age"] = np.nan
    out["gap"] = np.nan
    out["error"] = [one_line(e) for e in errors]
    return out


def with_failures(predicted: pd.DataFrame, failed: pd.DataFrame) -> pd.DataFrame:
    """Predicted rows then failed ones, in the input order when both carry its index."""
    if failed.empty:
        return predicted
    failed = failed[[c for c in failed.columns if c in predicted.columns or c == "error"]]
    out = pd.concat([predicted, failed], sort=False)
    if "error" not in predicted:
        out["error"] = out["error"].astype("string")
    return out.sort_index(kind="stable").reset_index(drop=True)


def report(table: pd.DataFrame, run: Path, notes: list[str],
           ood: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar: run, counts, scans not predicted (with the reason), notes, the flag
    columns and (`ood`) the out-of-distribution thresholds used."""
    failed = table[table["error"].notna()] if "error" in table else table.iloc[:0]
    extra: dict[str, Any] = {"columns": {c: t for c, t in COLUMN_NOTES.items() if c in table}}
    if ood is not None:
        extra["ood"] = ood
    return {
        "run": str(run), "scans": int(len(table)), "predicted": int(len(table) - len(failed)),
        "not_predicted": [
            {"participant_id": str(r["participant_id"]),
             "session": None if pd.isna(r.get("session")) else str(r["session"]),
             "error": str(r["error"])} for _, r in failed.iterrows()],
        "notes": list(notes), **extra,
    }


def write_outputs(output: Path, table: pd.DataFrame, run: Path, notes: list[str],
                  ood: dict[str, Any] | None = None) -> Path:
    """Write the predictions table and its sidecar; returns the sidecar's path."""
    from brainage.data.predictions import write_predictions

    sidecar = sidecar_path(output)
    write_json(sidecar, report(table, run, notes, ood))  # first: a table never lacks it
    write_predictions(output, table)  # atomic, and last: the table marks the output done
    return sidecar
