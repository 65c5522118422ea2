"""BIDS derivatives: dataset_description.json and per-scan NIfTI outputs with a JSON sidecar.

Per scan (``<stem>`` = ``sub-<label>[_ses-<label>][_run-<n>]``)::

    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-preproc_T1w.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-brain_mask.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-MNI152NLin2009aSym_res-<r>_desc-preproc_T1w.json
    sub-<label>/[ses-<label>/]anat/<stem>_space-..._res-<r>_label-{GM,WM,CSF}_probseg.nii.gz
    sub-<label>/[ses-<label>/]anat/<stem>_space-..._res-<r>_desc-logjacobian_map.nii.gz  (SyN)

Tissue maps (``--tissues``) are unmodulated probabilities; the log-Jacobian of the SyN warp
(tensor-based morphometry) is written with ``--nonlinear``.

Every image has a JSON sidecar (``Description``, ``Sources``, ``SpatialReference`` and the
``Resolution`` the ``res-`` entity requires); the preprocessed T1w's also holds the spec
hash and the scan's QC record. The NIfTI affines are the grid's MNI world affine (sform and
qform code 4, "MNI_152"), so the outputs overlay the template in any viewer; the gzip
streams carry no timestamp, so reruns are byte-identical.

The folder root also gets a ``README`` and a ``.bidsignore`` naming brainage's own files
that BIDS does not define (the cache, the index and QC tables, the spec, the log-Jacobian
map): the official validator (``bids-validator-deno``) then reports no errors
(``tests/test_bids_validator.py``; accepted warnings in ``docs/bids.md``).
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
BIDS_VERSION = "1.9.0"
#: Files of a prepared folder that BIDS does not define (``.bidsignore`` patterns).
PREPARED_IGNORE = ("/cache", "/index.tsv", "/index.json", "/qc.tsv", "/qc.json", "/cohort.tsv",
                   "/cohort.json", "/preprocessing_spec.json", "*_desc-logjacobian_map.nii.gz",
                   "*_desc-logjacobian_map.json")
_README = """brainage prepare: T1w scans registered to {template}, skull-stripped, resampled to
the {grid} grid and normalised ({steps}), with brain masks{tissues}.

Preprocessing spec {hash}; spec and library versions in preprocessing_spec.json. The cache/,
index.tsv, qc.tsv and cohort.tsv are brainage's own files (listed in .bidsignore).
"""


def source_url(source: str | Path) -> str:
    """A ``SourceDatasets`` URL: a ``file://`` URI for a local path, else the text as given."""
    path = Path(str(source))
    return path.resolve().as_uri() if path.exists() else str(source)


def write_dataset_description(root: str | Path, spec: PreprocessingSpec, source: str) -> Path:
    """Write ``dataset_description.json`` (DatasetType derivative, GeneratedBy with the
    version and the spec hash, SourceDatasets)."""
    path = Path(root) / "dataset_description.json"
    write_json(path, {
        "Name": f"brainage preprocessing ({spec.grid.name} grid)",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{
            "Name": "brainage", "Version": __version__,
            "Description": f"brainage prepare (preprocessing spec {spec.hash}): "
                           + " -> ".join(spec.steps),
        }],
        "SourceDatasets": [{"URL": source_url(source)}],
        "PreprocessingSpecHash": spec.hash,
    })
    return path


def write_dataset_files(root: str | Path, spec: PreprocessingSpec, source: str) -> None:
    """``dataset_description.json``, ``README`` and ``.bidsignore`` of a prepared folder."""
    write_dataset_description(root, spec, source)
    tissues = ", GM/WM/CSF probability maps" if spec.tissues else ""
    if spec.registration == "syn":
        tissues += " and the log-Jacobian of the SyN warp"
    write_readme(root, _README.format(template=spec.template, grid=spec.grid.name,
                                      steps=" -> ".join(spec.steps), tissues=tissues,
                                      hash=spec.hash))
    write_bidsignore(root, PREPARED_IGNORE)


def write_readme(root: str | Path, text: str) -> Path:
    """Write ``README`` unless the folder has one (a user's is kept)."""
    path = Path(root) / "README"
    if not path.exists():
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return path


def write_bidsignore(root: str | Path, patterns: tuple[str, ...] | list[str]) -> Path:
    """Make ``.bidsignore`` list `patterns` (lines already there are kept), atomically.

    Processes writing into one folder at once all add the same patterns, so whichever
    replace lands last the file lists them.
    """
    path = Path(root) / ".bidsignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    missing = [p for p in patterns if p not in lines]
    if missing or not path.is_file():
        with atomic_path(path) as tmp:
            tmp.write_text("".join(f"{line}\n" for line in [*lines, *missing]))
    return path


def sidecar_path(image: Path) -> Path:
    """The JSON sidecar of a ``.nii.gz`` image."""
    return image.with_name(image.name.removesuffix(".nii.gz") + ".json")


def resolution_text(spec: PreprocessingSpec) -> str:
    """What the ``res-`` label means (BIDS requires it in the sidecar)."""
    spacing = "x".join(f"{s:g}" for s in spec.grid.spacing)
    shape = "x".join(str(s) for s in spec.grid.shape)
    return f"{spacing} mm voxels, {shape} grid (brainage grid {spec.grid.name})"


def image_sidecar(spec: PreprocessingSpec, source: str, description: str,
                  **fields: Any) -> dict[str, Any]:
    """The sidecar fields every derivative image on the spec's grid carries."""
    return {"Description": description, "Sources": [str(source)],
            "SpatialReference": spec.template, "Resolution": resolution_text(spec),
            **fields}


def scan_paths(root: str | Path, key: ScanKey, spec: PreprocessingSpec) -> dict[str, Path]:
    """Absolute paths of one scan's derivative files: ``preproc``, ``mask``, ``label-<T>``,
    ``logjac`` and each one's ``<name>_sidecar`` (the preproc's is ``sidecar``)."""
    folder = Path(root) / "/".join(f"{k}-{v}" for k, v in key.entities if k != "run") / "anat"
    base = f"{key.stem}_space-{spec.template}_res-{spec.grid.res_label}"
    images = {
        "preproc": folder / f"{base}_desc-preproc_T1w.nii.gz",
        "mask": folder / f"{base}_desc-brain_mask.nii.gz",
        **{f"label-{t}": folder / f"{base}_label-{t}_probseg.nii.gz" for t in TISSUES},
        LOGJAC: folder / f"{base}_desc-logjacobian_map.nii.gz",
    }
    sidecars = {("sidecar" if k == "preproc" else f"{k}_sidecar"): sidecar_path(v)
                for k, v in images.items()}
    return {**images, **sidecars}


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, dtype: Any) -> None:
    """Write a gzipped NIfTI on an MNI grid (sform and qform code 4), atomically."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    img.set_sform(affine, code=_MNI_CODE)
    img.set_qform(affine, code=_MNI_CODE)
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:  # mtime 0: byte-identical reruns, no time in the header
        tmp.write_bytes(gzip.compress(img.to_bytes(), compresslevel=1, mtime=0))


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
    write_json(paths["mask_sidecar"], image_sidecar(spec, source, _MASK_TEXT, Type="Brain"))
    written = ["preproc", "sidecar", "mask", "mask_sidecar"]
    for channel, volume in zip(spec.tissue_channels, tissues if tissues is not None else [],
                               strict=False):
        name = LOGJAC if channel == LOGJAC else f"label-{channel}"
        save_nifti(paths[name], volume, affine, np.float32)
        text = _LOGJAC_TEXT if channel == LOGJAC else _TISSUE_TEXT.format(channel)
        write_json(paths[f"{name}_sidecar"], image_sidecar(spec, source, text))
        written += [name, f"{name}_sidecar"]
    write_json(paths["sidecar"], image_sidecar(
        spec, source, _PREPROC_TEXT, SkullStripped=True, PreprocessingSpecHash=spec.hash,
        QC=qc))
    return {k: str(paths[k].relative_to(root)) for k in written}


_PREPROC_TEXT = ("T1w registered to the template, skull-stripped, resampled and normalised "
                 "by brainage prepare.")
_MASK_TEXT = "Brain mask of the preprocessed T1w (skull stripping refined by intensity)."
_TISSUE_TEXT = ("{} probability (unmodulated): a Gaussian mixture of the intensities with "
                "the template's tissue priors.")
_LOGJAC_TEXT = ("Log-determinant of the Jacobian of the SyN warp (template -> scan, after "
                "the affine): > 0 where the anatomy is larger than the template's "
                "(tensor-based morphometry).")
