"""BIDS derivatives: dataset_description.json and per-scan NIfTI outputs with a JSON sidecar.

Per scan (``<stem>`` = ``sub-<label>[_ses-<label>][_run-<n>]``)::

    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-preproc_T1w.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-brain_mask.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-preproc_T1w.json
    sub-<label>/[ses-<label>/]anat/<stem>_space-..._res-<r>_label-{GM,WM,CSF}_probseg.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-..._res-<r>_desc-logjacobian_map.nii.gz  (SyN)

Tissue maps (``--tissues``) are unmodulated probabilities; the log-Jacobian of the SyN warp
(tensor-based morphometry) is written with ``--nonlinear``.

The JSON sidecar holds the source, the spec hash and the scan's QC record. The NIfTI affines
are the grid's MNI world affine (sform and qform code 4, "MNI_152"), so the outputs overlay
the template in any viewer.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from brainage import __version__
from brainage.io import atomic_path, write_json
from brainage.preprocessing.cache import ScanKey
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.preprocessing.tissues import LOGJAC, TISSUES

_MNI_CODE = 4  # NIFTI_XFORM_MNI_152


def write_dataset_description(root: str | Path, spec: PreprocessingSpec, source: str) -> Path:
    """Write ``dataset_description.json`` (DatasetType derivative, GeneratedBy with version)."""
    path = Path(root) / "dataset_description.json"
    write_json(path, {
        "Name": f"brainage preprocessing ({spec.grid.name} grid)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "brainage", "Version": __version__,
            "Description": "brainage prepare: " + " -> ".join(spec.steps),
        }],
        "SourceDatasets": [{"URL": str(source)}],
        "PreprocessingSpecHash": spec.hash,
    })
    return path


def scan_paths(root: str | Path, key: ScanKey, spec: PreprocessingSpec) -> dict[str, Path]:
    """Absolute paths of one scan's derivative files (``preproc``, ``mask``, ``sidecar``)."""
    folder = Path(root) / "/".join(f"{k}-{v}" for k, v in key.entities if k != "run") / "anat"
    base = f"{key.stem}_space-{spec.template}_res-{spec.grid.res_label}"
    return {
        "preproc": folder / f"{base}_desc-preproc_T1w.nii.gz",
        "mask": folder / f"{base}_desc-brain_mask.nii.gz",
        "sidecar": folder / f"{base}_desc-preproc_T1w.json",
        **{f"label-{t}": folder / f"{base}_label-{t}_probseg.nii.gz" for t in TISSUES},
        LOGJAC: folder / f"{base}_desc-logjacobian_map.nii.gz",
    }


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, dtype: Any) -> None:
    """Write a gzipped NIfTI on an MNI grid (sform and qform code 4), atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    img.set_sform(affine, code=_MNI_CODE)
    img.set_qform(affine, code=_MNI_CODE)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(img.to_bytes(), compresslevel=1))


def write_scan(
    root: str | Path, key: ScanKey, spec: PreprocessingSpec, array: np.ndarray,
    mask: np.ndarray, qc: dict[str, Any], source: str, tissues: np.ndarray | None = None,
) -> dict[str, str]:
    """Write one scan's derivatives; return their paths relative to `root`.

    Args:
        tissues: (C, X, Y, Z) maps in ``spec.tissue_channels`` order, or None.
    """
    paths = scan_paths(root, key, spec)
    affine = spec.grid.affine_array
    save_nifti(paths["preproc"], array, affine, np.float32)
    save_nifti(paths["mask"], mask, affine, np.uint8)
    written = ["preproc", "mask", "sidecar"]
    for channel, volume in zip(spec.tissue_channels, tissues if tissues is not None else [],
                               strict=False):
        name = LOGJAC if channel == LOGJAC else f"label-{channel}"
        save_nifti(paths[name], volume, affine, np.float32)
        written.append(name)
    write_json(paths["sidecar"], {
        "Sources": [str(source)],
        "SkullStripped": True,
        "SpatialReference": spec.template,
        "PreprocessingSpecHash": spec.hash,
        "QC": qc,
    })
    return {k: str(paths[k].relative_to(root)) for k in written}
