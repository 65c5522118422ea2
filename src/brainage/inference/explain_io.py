"""Inputs and outputs of :mod:`brainage.inference.explain`: read a scan, write derivatives."""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.errors import InputError, NotFoundError
from brainage.io import atomic_path, write_json, write_tsv

_MNI_CODE = 4  # NIFTI_XFORM_MNI_152
_SCANNER_CODE = 1  # NIFTI_XFORM_SCANNER_ANAT
_IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh")


@dataclass
class ScanInput:
    """One scan ready to explain.

    Attributes:
        array: ``(X, Y, Z)`` float32 model input on the run's grid.
        key: Participant / session / run for the file names.
        source: The file (or ``"array"``) it came from.
        qc: The preprocessing QC record (raw scans only).
        native_shape: Shape of the raw scan (raw scans only).
        native_affine: ``(4, 4)`` affine of the raw scan (raw scans only).
        native_codes: sform / qform codes of the raw scan's header.
        tissues: ``(C, X, Y, Z)`` tissue maps (classical models), or None.
        affine_det: The scan's affine determinant (modulates the tissue maps), or None.
    """

    array: np.ndarray
    key: Any
    source: str
    qc: dict[str, Any] | None = None
    native_shape: tuple[int, ...] | None = None
    native_affine: np.ndarray | None = None
    native_codes: tuple[int, int] = (_SCANNER_CODE, _SCANNER_CODE)
    tissues: np.ndarray | None = None
    affine_det: float | None = None


def _stem(name: str) -> str:
    return re.sub(r"\.(nii(\.gz)?|npy|mgz|mgh)$", "", Path(name).name)


def entities(name: str) -> dict[str, str]:
    """``key-value`` tokens of a file name: ``sub-01_ses-2_T1w.nii.gz`` and the cache's
    ``sub-01_ses-2.npy`` both give ``{"sub": "01", "ses": "2"}``."""
    return dict(tok.split("-", 1) for tok in _stem(name).split("_") if "-" in tok)


def label_from_name(name: str) -> str:
    """A BIDS label from any file name: ``"my scan_01.nii.gz"`` -> ``"myscan01"``."""
    stem = _stem(name)
    label = re.sub(r"[^A-Za-z0-9]", "", stem)
    if not label:
        raise InputError(f"cannot make a participant label from {name!r}. "
                            "Fix: pass subject='<label>'.")
    return label


def scan_key(source: str, subject: str | None, session: str | None) -> Any:
    """``ScanKey`` from explicit labels, else from BIDS entities in the file name."""
    from brainage.preprocessing.cache import ScanKey

    ent = entities(source) if source != "array" else {}
    sub = subject or ent.get("sub") or (label_from_name(source) if source != "array" else None)
    if sub is None:
        raise InputError("an in-memory array has no file name to take a participant label "
                            "from. Fix: pass subject='<label>'.")
    run = ent.get("run")
    return ScanKey(sub, session or ent.get("ses"),
                   int(run) if run is not None and run.isdigit() else None)


def _check_grid(array: np.ndarray, spec: Any, source: str) -> np.ndarray:
    if tuple(array.shape) != tuple(spec.grid.shape):
        raise InputError(
            f"{source}: prepared array of shape {tuple(array.shape)} is not on the run's grid "
            f"{spec.grid.name} {tuple(spec.grid.shape)}. Fix: pass the raw scan, which is "
            "prepared with the run's own spec, or an array prepared with that spec.")
    return np.asarray(array, dtype=np.float32)


def read_input(scan: str | Path | np.ndarray, spec: Any, subject: str | None = None,
               session: str | None = None, dicom_series: str | None = None, *,
               tissues: str | Path | np.ndarray | None = None,
               affine_det: float | None = None) -> ScanInput:
    """A raw image or DICOM folder (preprocessed with `spec`), a prepared ``.npy`` or an
    in-memory array (`dicom_series`: the series of a DICOM folder; default its T1w one).

    Tissue maps (for classical models) come from preprocessing a raw scan, from the
    prepared folder a ``.npy`` lies in (``cache/tissues/<scan>.npy`` and the scan's record),
    or from `tissues` and `affine_det`, which override both.

    Raises:
        BrainAgeError: missing or unreadable file, or an array off the run's grid.
    """
    inp = _read_scan(scan, spec, subject, session, dicom_series)
    if tissues is not None:
        inp.tissues = _check_tissues(tissues, spec, inp.source)
    if affine_det is not None:
        inp.affine_det = float(affine_det)
    return inp


def _read_scan(scan: str | Path | np.ndarray, spec: Any, subject: str | None,
               session: str | None, dicom_series: str | None) -> ScanInput:
    from brainage.data.datasets import load_array
    from brainage.data.dicom import DicomScan, scan_source

    if isinstance(scan, np.ndarray):
        return ScanInput(_check_grid(load_array(scan), spec, "array"),
                         scan_key("array", subject, session), "array")
    source = scan_source(scan, dicom_series)
    if isinstance(source, DicomScan):
        return _read_raw(source, spec, subject, session)
    path = Path(scan)
    if path.name.endswith(".npy"):
        if not path.is_file():
            raise NotFoundError(f"{path}: prepared array not found. Fix: check the path.")
        arr = _check_grid(load_array(path), spec, str(path))
        tissues, det = prepared_tissues(path, spec)
        return ScanInput(arr, scan_key(str(path), subject, session), str(path),
                         tissues=tissues, affine_det=det)
    if not path.name.endswith(_IMAGE_SUFFIXES):
        raise InputError(f"{path}: expected a NIfTI image (.nii, .nii.gz), a folder of DICOM "
                         "files or a prepared array (.npy). Fix: pass one of those.")
    return _read_raw(path, spec, subject, session)


def _check_tissues(tissues: str | Path | np.ndarray, spec: Any, source: str) -> np.ndarray:
    """``(C, X, Y, Z)`` tissue maps on the run's grid (an array or a ``.npy`` path)."""
    if isinstance(tissues, str | Path):
        if not Path(tissues).is_file():
            raise NotFoundError(f"{tissues}: tissue maps not found. Fix: check the path.")
        tissues = np.load(tissues, mmap_mode="r")
    maps = np.asarray(tissues)
    if maps.ndim != 4 or tuple(maps.shape[1:]) != tuple(spec.grid.shape):
        raise InputError(
            f"{source}: tissue maps of shape {tuple(maps.shape)}; expected (C, "
            f"{', '.join(str(n) for n in spec.grid.shape)}) on the run's grid "
            f"{spec.grid.name}. Fix: pass the maps prepared with the run's spec.")
    return maps


def prepared_tissues(array_path: Path, spec: Any) -> tuple[np.ndarray | None, float | None]:
    """The tissue maps and affine determinant of a prepared folder's scan array.

    ``<root>/cache/arrays/<scan>.npy`` has its maps at ``<root>/cache/tissues/<scan>.npy``
    and its ``affine_det`` in ``<root>/cache/records/<scan>.json``; (None, None) for an
    array outside a prepared folder or one prepared without tissue maps.
    """
    from brainage.preprocessing.cache import ARRAYS, RECORDS, TISSUE_ARRAYS

    path = Path(array_path)
    if not spec.tissues or len(path.parents) < 3 or path.parent.name != ARRAYS.name:
        return None, None
    root, name = path.parents[2], path.name
    maps_path, record = root / TISSUE_ARRAYS / name, root / RECORDS / f"{_stem(name)}.json"
    if not maps_path.is_file() or not record.is_file():
        return None, None
    try:
        det = json.loads(record.read_text()).get("affine_det")
    except (OSError, json.JSONDecodeError):
        det = None
    return (_check_tissues(maps_path, spec, str(path)),
            None if det is None else float(det))


def _read_raw(path: Path | Any, spec: Any, subject: str | None, session: str | None
              ) -> ScanInput:
    from brainage.preprocessing import pipeline, steps

    img = steps.load_image(path)  # clear BrainAgeError when missing or unreadable
    result = pipeline.preprocess(img, spec, name=str(path))  # opened (converted) once
    codes = (_SCANNER_CODE, _SCANNER_CODE)
    header = getattr(img, "header", None)
    if header is not None and hasattr(header, "get_sform"):
        codes = (int(header.get_sform(coded=True)[1] or _SCANNER_CODE),
                 int(header.get_qform(coded=True)[1] or _SCANNER_CODE))
    where = os.fspath(path)  # a DicomScan: its folder
    return ScanInput(_check_grid(result.array, spec, where),
                     scan_key(where, subject, session), where, qc=result.qc,
                     native_shape=tuple(int(s) for s in img.shape[:3]),
                     native_affine=np.asarray(img.affine, dtype=np.float64), native_codes=codes,
                     tissues=getattr(result, "tissues", None),
                     affine_det=_float_or_none((result.qc or {}).get("affine_det")))


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def output_paths(out_dir: Path, key: Any, spec: Any) -> dict[str, Path]:
    """Paths of one scan's explanation files (see :mod:`brainage.inference.explain`)."""
    folder = out_dir.joinpath(*[f"{k}-{v}" for k, v in key.entities if k != "run"], "anat")
    tpl = f"{key.stem}_space-{spec.template}_res-{spec.grid.res_label}_desc-saliency"
    nat = f"{key.stem}_space-T1w_desc-saliency"
    return {
        "template": folder / f"{tpl}_T1w.nii.gz", "template_json": folder / f"{tpl}_T1w.json",
        "native": folder / f"{nat}_T1w.nii.gz", "native_json": folder / f"{nat}_T1w.json",
        "regions": folder / f"{tpl}_regions.tsv", "regions_json": folder / f"{tpl}_regions.json",
    }


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray, codes: tuple[int, int]) -> None:
    """Write a float32 NIfTI (gzip) atomically with the given sform / qform codes."""
    import nibabel as nib

    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.set_sform(affine, code=codes[0])
    img.set_qform(affine, code=codes[1])
    img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:  # mtime 0: no time in the gzip header (BIDS validator)
        tmp.write_bytes(gzip.compress(img.to_bytes(), compresslevel=1, mtime=0))


def write_dataset_description(out_dir: Path) -> None:
    """``dataset_description.json`` for the explanation derivatives (kept if present)."""
    path = out_dir / "dataset_description.json"
    if path.exists():
        return
    write_json(path, {
        "Name": "brainage explanation maps", "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainage", "Version": __version__,
                         "Description": "brainage explain: voxelwise saliency of the "
                                        "predicted brain age"}],
    })


def _native(inp: ScanInput, spec: Any, sal: np.ndarray, info: dict[str, Any]
            ) -> np.ndarray | None:
    """The map on the raw scan's grid, or None (prepared input); notes go into `info`."""
    from brainage.inference.native import map_to_native

    if inp.qc is None or inp.native_affine is None or inp.native_shape is None:
        info["NativeSpace"] = "not written: the input was already prepared (no transform)"
        return None
    matrix = inp.qc.get("affine_template_to_native")
    if matrix is None:
        info["NativeSpace"] = "not written: the QC record holds no template-to-native affine"
        return None
    info["NativeSpace"] = ("affine part of the registration (SyN warp not kept by "
                           "preprocessing)" if spec.registration == "syn" else
                           "inverse of the registration affine")
    return map_to_native(sal, spec.grid.affine_array, np.asarray(matrix), inp.native_shape,
                         inp.native_affine)


def _column_sidecar(columns: dict[str, str], units: dict[str, str]) -> dict[str, Any]:
    """BIDS tabular sidecar: a Description (and Units where known) per column."""
    out: dict[str, Any] = {}
    for name, text in columns.items():
        out[name] = {"Description": text, **({"Units": units[name]} if name in units else {})}
    return out


_SALIENCY_TEXT = ("Voxelwise saliency of the predicted brain age (see Method), computed "
                  "from the skull-stripped preprocessed T1w.")


def write_outputs(out_dir: Path, inp: ScanInput, spec: Any, sal: np.ndarray,
                  info: dict[str, Any]) -> tuple[dict[str, Path], pd.DataFrame]:
    """Write the maps, the region table and their sidecars; return paths and the table."""
    from brainage.inference.regions import COLUMNS, UNITS, region_summary

    paths = output_paths(out_dir, inp.key, spec)
    write_dataset_description(out_dir)
    grid_affine = spec.grid.affine_array
    regions = region_summary(sal, grid_affine, spec.grid.shape)
    native = _native(inp, spec, sal, info)
    save_nifti(paths["template"], sal, grid_affine, (_MNI_CODE, _MNI_CODE))
    about = {"Description": _SALIENCY_TEXT, "SkullStripped": True, **info}
    write_json(paths["template_json"], {**about, "SpatialReference": spec.template,
                                        "Resolution": spec.grid.name})
    if native is not None:
        save_nifti(paths["native"], native, inp.native_affine, inp.native_codes)
        write_json(paths["native_json"], {**about, "SpatialReference": "T1w (the raw scan)"})
    else:
        for role in ("native", "native_json"):
            paths.pop(role)
    write_tsv(paths["regions"], regions)
    write_json(paths["regions_json"], _column_sidecar(COLUMNS, UNITS))
    return paths, regions
