"""OpenBHB arrays as a prepared cohort, so pretraining, probing and prediction take them as is.

OpenBHB ships its images already preprocessed, so they skip ``brainage prepare``:

* per subject: ``sub-<id>_preproc-cat12vbm_desc-gm_T1w.npy`` (1, 121, 145, 121) or
  ``..._preproc-quasiraw_T1w.npy`` (1, 182, 218, 182), read memory-mapped;
* flat (the challenge): ``train.npy`` / ``test.npy``, one subject per row, each row the
  masked VBM block (519,945 voxels: CAT12 GM TPM > 0.05), the masked quasi-raw block
  (1,827,095: brain mask > 0), then surface maps and ROI tables. A batch of rows is read
  together and unmasked with the subject axis first (:mod:`brainage.data.openbhb_volumes`);
  per-subject unmasking followed by a reshape scrambles volumes.

The masks come with the challenge (``cat12vbm_space-MNI152_desc-gm_TPM.nii.gz``,
``quasiraw_space-MNI152_desc-brain_T1w.nii.gz``). They are looked up next to the data, in
its ``resource/`` or ``masks/`` folder, never relative to the working directory, or given
explicitly. In rows of the challenge's width (3,659,572) a mask must select exactly the
challenge's block (a wrong file or threshold is refused); other layouts (a miniature, a
subset of columns) are only checked to fit in the rows. Per-subject arrays are masked only when
asked (``mask=True`` or a path), so that they match a model trained on the flat rows.

The cohort's preprocessing spec names OpenBHB, the modality, the shape and whether the
volumes are masked: a run trained on them predicts only OpenBHB arrays of the same kind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.openbhb import FLAT_SPLITS, MODALITIES
from brainage.data.openbhb_volumes import (
    FLAT_WIDTH,
    MASK_DIRS,
    MASKS,
    FlatBlock,
    FlatRow,
    MaskedVolume,
    find_mask,
    load_mask,
)
from brainage.errors import InputError, NotFoundError
from brainage.preprocessing.grids import PRESETS, fsl_grid
from brainage.preprocessing.prepared import PreparedCohort, is_prepared, open_prepared
from brainage.preprocessing.spec import PreprocessingSpec

#: Voxel size (mm) of each modality's grid.
SPACING = {"vbm": 1.5, "quasiraw": 1.0}


def openbhb_spec(modality: str, shape: tuple[int, ...], masked: bool) -> PreprocessingSpec:
    """The spec of OpenBHB arrays of `modality` and `shape` (masked or not)."""
    shape3 = (int(shape[-3]), int(shape[-2]), int(shape[-1]))
    name = f"openbhb-{modality}"
    grid = PRESETS[name] if shape3 == MODALITIES[modality][1][1:] else fsl_grid(
        SPACING[modality], shape3, f"{name}-{'x'.join(map(str, shape3))}")
    return PreprocessingSpec(
        grid=grid, n4=modality == "quasiraw", skullstrip="template",
        registration="syn" if modality == "vbm" else "affine", normalisation="none",
        template=f"OpenBHB {modality} arrays",
        params={"source": "OpenBHB", "modality": modality, "masked": bool(masked),
                "interpolation": "as distributed"},
        libraries={})


def is_openbhb(path: str | Path) -> bool:
    """True for OpenBHB data: flat train/test arrays, or participants.tsv and arrays."""
    p = Path(path)
    if p.is_file():
        return p.suffix == ".npy" and p.with_suffix(".tsv").is_file()
    if any((p / f"{n}.npy").is_file() for n in FLAT_SPLITS):
        return True
    return (p / "participants.tsv").is_file() and any(
        next(p.rglob(f"sub-*{suffix}"), None) is not None for suffix, _ in MODALITIES.values())


def _is_flat(p: Path) -> bool:
    return p.is_file() or any((p / f"{n}.npy").is_file() for n in FLAT_SPLITS)


def _mask_for(root: Path, modality: str, mask: str | Path | bool | None, flat: bool
              ) -> np.ndarray | None:
    if mask is False:
        if flat:
            raise InputError("flat OpenBHB rows cannot be read without their mask. Fix: "
                             "leave the mask option out, or give the mask file.")
        return None
    if mask is None and not flat:
        return None
    path = find_mask(root, modality) if mask in (None, True) else Path(mask)
    if path is None:
        raise NotFoundError(f"{root}: no {MASKS[modality][0]} next to the data or in "
                            f"{', '.join(MASK_DIRS[1:])}/. Fix: put the challenge's mask "
                            "there, or give its path (--mask).")
    return load_mask(path, modality)


def _flat_start(root: Path, modality: str, width: int) -> int:
    """First column of `modality`'s block in a flat row."""
    if modality == "vbm":
        return 0
    vbm = find_mask(root, "vbm")
    if vbm is not None:
        return int(load_mask(vbm, "vbm").sum())
    if width == FLAT_WIDTH:
        return MASKS["vbm"][2]
    raise NotFoundError(f"{root}: the quasi-raw block follows the VBM block, whose width "
                        f"needs {MASKS['vbm'][0]}. Fix: put that mask next to the data.")


def _flat_volumes(table: pd.DataFrame, root: Path, modality: str, mask: np.ndarray) -> list:
    blocks: dict[str, FlatBlock] = {}
    out = []
    for path, row in zip(table["path"], table["array_index"], strict=True):
        if path not in blocks:
            width = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[1])
            start = _flat_start(root, modality, width)
            blocks[path] = FlatBlock(path, start, mask)
            _check_block(Path(path), modality, start, blocks[path].n, width)
        out.append(FlatRow(blocks[path], int(row)))
    return out


def _check_block(path: Path, modality: str, start: int, n: int, width: int) -> None:
    official = MASKS[modality][2]
    if start + n > width or (width == FLAT_WIDTH and n != official):
        raise InputError(
            f"{path}: the {modality} mask selects {n:,} voxels from column {start:,}, but the "
            f"rows have {width:,} columns (the challenge's {modality} block: {official:,}). "
            f"Fix: use the challenge's {MASKS[modality][0]} (threshold > "
            f"{MASKS[modality][1]}).")


def _subject_shape(paths: list[str]) -> tuple[int, ...]:
    shapes: dict[tuple[int, ...], str] = {}
    for p in paths:
        try:
            shapes.setdefault(tuple(np.load(p, mmap_mode="r", allow_pickle=False).shape), p)
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: cannot read the OpenBHB array ({exc}). Fix: re-download "
                             "it, or remove the subject from participants.tsv.") from exc
    if len(shapes) > 1:
        listed = "; ".join(f"{s} ({p})" for s, p in list(shapes.items())[:3])
        raise InputError(f"OpenBHB arrays of different shapes: {listed}. Fix: keep one "
                         "modality and one preprocessing per folder.")
    (shape,) = shapes
    if len(shape) not in (3, 4) or (len(shape) == 4 and shape[0] != 1):
        raise InputError(f"{paths[0]}: shape {shape}; expected (1, D, H, W) or (D, H, W).")
    return shape[-3:]


def open_openbhb(source: str | Path, modality: str = "vbm", mask: str | Path | bool | None = None,
                 labels: set[str] | None = None) -> PreparedCohort:
    """OpenBHB data (either format) opened as a prepared cohort.

    Args:
        source: The folder (or one flat ``.npy`` with its ``.tsv``).
        modality: ``vbm`` or ``quasiraw``.
        mask: None (flat rows: the challenge's mask found next to the data; per-subject
            arrays: unmasked), True (find and apply it), False (never) or a mask file.
        labels: Participants to keep.

    Raises:
        BrainAgeError: invalid tables or arrays (every row reported), missing or wrong masks.
    """
    from brainage.data.sources import load_cohort

    root = Path(source).resolve()
    if modality not in MODALITIES:
        raise InputError(f"modality {modality!r}: expected vbm or quasiraw.")
    flat = _is_flat(root)
    cohort = load_cohort(root, format="openbhb", modality=modality,
                         participant_labels=sorted(labels) if labels else None,
                         check_images=flat)
    table = cohort.table.copy()
    if "siteXacq" in table and table["siteXacq"].notna().all():
        table["site"] = table["siteXacq"].astype(str)  # the challenge's 64 site classes
    mask_array = _mask_for(root, modality, mask, flat)
    if flat:
        table["array_path"] = _flat_volumes(table, root, modality, mask_array)
        shape: tuple[int, ...] = mask_array.shape  # type: ignore[union-attr]
    else:
        shape = _subject_shape(list(table["path"]))
        if mask_array is not None:
            if mask_array.shape != shape:
                raise InputError(f"mask of shape {mask_array.shape} for arrays of shape "
                                 f"{shape}. Fix: use the mask of this modality.")
            table["array_path"] = [MaskedVolume(p, mask_array) for p in table["path"]]
        else:
            table["array_path"] = list(table["path"])
    table["qc_flags"] = pd.NA
    spec = openbhb_spec(modality, shape, mask_array is not None)
    return PreparedCohort(root, table, spec, spec.hash, tuple(shape), table.iloc[:0],
                          cohort.source)


def spec_modality(spec: PreprocessingSpec) -> tuple[str, bool] | None:
    """``(modality, masked)`` of an OpenBHB spec; None for a spec of ``brainage prepare``."""
    params = dict(spec.params)
    if params.get("source") != "OpenBHB":
        return None
    return str(params["modality"]), bool(params["masked"])


def open_inputs(source: Any, cohort: Any = None, *, modality: str | None = None,
                mask: str | Path | bool | None = None) -> PreparedCohort:
    """A prepared cohort from what a command was given: an opened cohort, a folder of
    ``brainage prepare``, or OpenBHB data.

    Raises:
        BrainAgeError: none of these, or unreadable data.
    """
    if isinstance(source, PreparedCohort):
        return source
    path = Path(os.fspath(source))
    if is_prepared(path):
        return open_prepared(path, cohort)
    if path.exists() and is_openbhb(path):
        return open_openbhb(path, modality or "vbm", mask)
    raise InputError(f"{path}: not a prepared cohort (no preprocessing_spec.json and "
                     "index.tsv) nor OpenBHB data. Fix: run "
                     f"`brainage prepare SOURCE {path}` first, or point to OpenBHB's folder "
                     "(participants.tsv + arrays, or train.npy/test.npy + .tsv).")


def open_like(source: Any, spec: PreprocessingSpec, cohort: Any = None,
              mask: str | Path | bool | None = None) -> PreparedCohort:
    """Data opened as a run's spec says: OpenBHB arrays of its modality, masked if its
    were (`mask` overrides), or any other input as :func:`open_inputs` opens it."""
    kind = spec_modality(spec)
    if kind is None:
        return open_inputs(source, cohort, mask=mask)
    return open_inputs(source, cohort, modality=kind[0], mask=kind[1] if mask is None else mask)
