"""The rows a :class:`~brainage.inference.predictor.Predictor` reads and writes.

Raw scans are told from other inputs, preprocessed in memory with the run's spec (a scan
that fails is a row with its ``error``), checked against the run's input shape, and the
output table starts from the input's id and demographic columns.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import BrainAgeError, InputError
from brainage.inference import outputs

OUTPUT_COLUMNS = ("participant_id", "session", "run", "age", "age_source", "age_note", "predicted_age",
                  "gap", "sex", "site", "group")


def is_raw_scan(path: str | Path) -> bool:
    """Whether `path` is one raw scan (a NIfTI file or a DICOM folder), which
    :meth:`~brainage.inference.predictor.Predictor.predict` takes together with others;
    anything else (a prepared folder, a cohort source, OpenBHB arrays) is predicted alone."""
    from brainage.data.dicom import is_dicom_folder

    item = Path(path)
    return item.name.endswith((".nii", ".nii.gz")) or is_dicom_folder(item)


def check_shapes(input_shape: list[int] | None, run_dir: Path, data: pd.DataFrame) -> None:
    """Refuse arrays of another shape than the run was trained on (``run.json``).

    Raises:
        InputError: the arrays of the wrong shape, listed.
    """
    if not input_shape or "array_path" not in data:
        return
    want = tuple(int(n) for n in input_shape)
    bad = []
    for i, item in enumerate(data["array_path"]):
        shape = array_shape(item)
        if shape is not None and shape != want:
            who = data["participant_id"].iloc[i] if "participant_id" in data else i
            bad.append(f"{who} {shape}")
    if bad:
        raise InputError(
            f"{len(bad)} array(s) do not have the input shape {want} that run "
            f"{run_dir} was trained on: {', '.join(bad[:10])}. Fix: prepare the scans "
            "with the run's own spec (pass raw scans to `brainage predict`).")


def array_shape(item: Any) -> tuple[int, ...] | None:
    """Spatial shape of an input: an array, a lazy volume with ``shape``, or a ``.npy`` path
    (its header only); None when it cannot be known without reading the data."""
    if hasattr(item, "shape"):
        return tuple(int(n) for n in item.shape)
    if isinstance(item, str | Path) and str(item).endswith(".npy"):
        return tuple(np.load(item, mmap_mode="r").shape)
    return None


def preprocess_rows(table: pd.DataFrame, spec: Any, quiet: bool = False
                     ) -> tuple[pd.DataFrame, pd.Index, pd.DataFrame]:
    """Preprocess the raw ``path`` of each row in memory with `spec` (`quiet`: failures are
    only rows, with no warning or error).

    Returns:
        (the rows that worked, with ``array_path`` (+ ``tissue_path``, ``affine_det``) and
        ``qc_flags``; their index in `table`; failure rows with their ``error``).

    Raises:
        BrainAgeError: no scan could be preprocessed (every reason listed).
    """
    from brainage.data.scans import row_source, with_header_demographics
    from brainage.preprocessing.antsio import deterministic_itk
    from brainage.preprocessing.pipeline import preprocess_scan

    deterministic_itk()  # the same scan gives the same prediction, run after run
    data = with_header_demographics(table.reset_index(drop=True))
    images, tissues, dets, flags, failed, errors = [], [], [], [], [], []
    for i, row in data.iterrows():
        try:
            result = preprocess_scan(row_source(row), spec)
        except BrainAgeError as exc:
            failed.append(i)
            errors.append(f"preprocessing failed: {exc}")
            continue
        images.append(np.asarray(result.array, dtype=np.float32))
        tissues.append(result.tissues)
        dets.append(result.qc.get("affine_det"))
        flags.append(qc_text(result.qc))
    if failed and not quiet:
        listing = "; ".join(f"{data['path'].iloc[i]}: {e}" for i, e in zip(failed, errors,
                                                                             strict=True))
        if len(failed) == len(data):
            raise BrainAgeError(f"no input scan could be preprocessed: {listing}")
        warnings.warn(f"{len(failed)} of {len(data)} scan(s) not predicted: {listing}",
                      outputs.NoteWarning, stacklevel=3)
    rows = outputs.failure_rows(data.iloc[failed], errors)
    data = data.drop(index=failed)
    kept = data.index
    data = data.reset_index(drop=True)
    data["array_path"] = images
    if spec.tissues:
        data["tissue_path"], data["affine_det"] = tissues, dets
    data["qc_flags"] = flags
    return data, kept, rows


def base_columns(data: pd.DataFrame) -> pd.DataFrame:
    """The input columns of :data:`OUTPUT_COLUMNS` an output table starts from (age as
    float, missing ids and ages as n/a)."""
    cols = [c for c in OUTPUT_COLUMNS if c in data and c not in ("predicted_age", "gap")]
    out = data[cols].copy()
    for col in ("participant_id", "session", "age"):
        if col not in out:
            out[col] = np.nan if col == "age" else pd.NA
    out["age"] = pd.to_numeric(out["age"], errors="coerce").astype(float)
    if "run" in out and out["run"].isna().all():
        out = out.drop(columns="run")
    return out


def bids_entity(path: str | Path, key: str) -> str | None:
    """BIDS entity ``key-<label>`` from a file name (``sub-01_ses-2_T1w`` -> ``sub-01``)."""
    for part in Path(path).name.split(".")[0].split("_"):
        if part.startswith(f"{key}-"):
            return part
    return None


def qc_text(qc: Any) -> str | None:
    """QC result -> ``;``-joined flags (None when clean)."""
    if qc is None:
        return None
    if isinstance(qc, dict):
        flags = qc.get("flags", [k for k, v in qc.items() if v is True])
    else:
        flags = getattr(qc, "flags", qc)
    if isinstance(flags, str):
        return flags or None
    flags = [str(f) for f in flags]
    return ";".join(flags) or None
