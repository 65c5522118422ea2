"""JSON sidecars of the tables brainage writes (BIDS tabular files: every column described).

Kept apart from :mod:`brainage.preprocessing.derivatives` so that the cache (which writes
``index.tsv`` and ``qc.tsv``) and the derivatives writer (which names scans by the cache's
keys) do not import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from brainage.io import write_json

#: Columns of brainage's own tables in a prepared folder: description and unit (None: none).
TABLE_COLUMNS: dict[str, tuple[str, str | None]] = {
    "participant_id": ("Participant identifier (sub-<label>).", None),
    "session": ("Session identifier (ses-<label>); n/a for single-session data.", None),
    "run": ("Run index of the T1w image within its session.", None),
    "path": ("The raw T1w image (or DICOM series folder).", None),
    "age": ("Chronological age at the scan.", "year"),
    "sex": ("Sex: F (female) or M (male).", None),
    "site": ("Acquisition site.", None),
    "group": ("Study group, e.g. control or patient.", None),
    "dicom_series": ("DICOM series chosen in the folder, when the input is DICOM.", None),
    "scan": ("Scan identifier: sub-<label>[_ses-<label>][_run-<n>].", None),
    "status": ("ok, or failed (see error).", None),
    "error": ("Why preprocessing failed; n/a when it did not.", None),
    "flags": ("Quality-control flags, ';'-separated; n/a when clean.", None),
    "spec_hash": ("Hash of the preprocessing spec the scan was prepared with.", None),
    "array": ("The cached float16 array, relative to the folder.", None),
    "preproc": ("The preprocessed T1w NIfTI, relative to the folder.", None),
    "mask": ("The brain mask NIfTI, relative to the folder.", None),
    "source": ("The raw input the scan was prepared from.", None),
    "tissues": ("The cached tissue-map array (GM, WM, CSF[, logjac]), relative to the folder.",
                None),
    "affine_det": ("Determinant of the template -> native affine (head size).", None),
    "similarity": ("Pearson r of the registered scan and the template in the template brain.",
                   None),
    "brain_volume_ml": ("Brain-mask volume in native space.", "ml"),
    "mask_dice_template": ("Dice overlap of the brain mask and the template's.", None),
    "coverage": ("Fraction of the template brain inside the scan's field of view.", None),
    "orientation": ("Axis codes of the raw image, e.g. RAS.", None),
    "voxel_size_mm": ("Voxel size of the raw image.", "mm"),
    "brain_mean": ("Mean intensity in the brain mask before normalisation.", None),
    "brain_sd": ("Intensity standard deviation in the brain mask before normalisation.",
                 None),
    "seconds": ("Preprocessing time.", "s"),
}


def write_table_sidecar(table: str | Path, columns: Any,
                        known: dict[str, tuple[str, str | None]] | None = None) -> Path:
    """Write ``<table>.json`` describing each of `columns` (BIDS tabular sidecar).

    Args:
        table: The TSV path.
        columns: Its column names.
        known: Descriptions and units by column (default :data:`TABLE_COLUMNS`); a column
            not in it is described as carried over from the source table.
    """
    known = TABLE_COLUMNS if known is None else known
    out: dict[str, Any] = {}
    for col in columns:
        text, unit = known.get(str(col), (f"Column {col!r} carried over from the source "
                                          "table.", None))
        out[str(col)] = {"Description": text, **({"Units": unit} if unit else {})}
    path = Path(table).with_suffix(".json")
    write_json(path, out)
    return path
