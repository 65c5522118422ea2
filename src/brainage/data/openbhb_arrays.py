"""OpenBHB arrays as a prepared cohort, so pretraining, probing and prediction take them as is.

OpenBHB ships its images already preprocessed, so they skip ``brainage prepare``:

* per subject: ``sub-<id>_preproc-cat12vbm_desc-gm_T1w.npy`` (1, 121, 145, 121) or
  ``..._preproc-quasiraw_T1w.npy`` (1, 182, 218, 182), read memory-mapped;
* flat (the challenge): ``train.npy`` / ``test.npy``, one subject per row, each row the
  masked VBM block (519,945 voxels: CAT12 GM TPM > 0.05), the masked quasi-raw block
  (1,827,095: brain mask > 0), then surface maps and ROI tables. A batch of rows is read
  together and unmasked with the subject axis first (``out[:, mask] = rows``: C order, as
  the masks index a volume); per-subject unmasking followed by a reshape scrambles volumes.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.openbhb import FLAT_SPLITS, MODALITIES
from brainage.errors import InputError, NotFoundError
from brainage.preprocessing.grids import PRESETS, fsl_grid
from brainage.preprocessing.prepared import PreparedCohort, is_prepared, open_prepared
from brainage.preprocessing.spec import PreprocessingSpec

#: modality -> (mask file of the challenge, threshold (mask = value > threshold), voxels)
MASKS: dict[str, tuple[str, float, int]] = {
    "vbm": ("cat12vbm_space-MNI152_desc-gm_TPM.nii.gz", 0.05, 519_945),
    "quasiraw": ("quasiraw_space-MNI152_desc-brain_T1w.nii.gz", 0.0, 1_827_095),
}
#: Folders, relative to the data, searched for the masks.
MASK_DIRS: tuple[str, ...] = (".", "resource", "masks")
#: Width of a flat challenge row: VBM + quasi-raw + surfaces (8 x 163,842) + ROIs (1,796).
FLAT_WIDTH = 3_659_572
SPACING = {"vbm": 1.5, "quasiraw": 1.0}


def find_mask(root: Path, modality: str) -> Path | None:
    """The challenge's mask file of `modality` next to the data (or in resource/, masks/)."""
    base = root if root.is_dir() else root.parent
    for folder in MASK_DIRS:
        path = (base / folder / MASKS[modality][0]).resolve()
        if path.is_file():
            return path
    return None


def load_mask(path: str | Path, modality: str) -> np.ndarray:
    """A boolean (D, H, W) mask: the NIfTI (or ``.npy``) values above the modality's
    threshold (> 0.05 for the VBM grey-matter TPM, > 0 for the quasi-raw brain mask)."""
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: mask file not found. Fix: give the challenge's "
                            f"{MASKS[modality][0]} (or put it next to the data).")
    if p.suffix == ".npy":
        data = np.load(p, allow_pickle=False)
    else:
        import nibabel as nib

        data = np.asanyarray(nib.load(str(p)).dataobj)
    data = np.squeeze(data)
    if data.ndim != 3:
        raise InputError(f"{p}: a mask must be one 3D volume, got shape {data.shape}.")
    return data > MASKS[modality][1]


def unmask(rows: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked rows ``(B, n)`` -> volumes ``(B, D, H, W)`` (zeros outside the mask).

    Raises:
        InputError: ``n`` is not the mask's voxel count.
    """
    rows = np.asarray(rows)
    n = int(mask.sum())
    if rows.ndim != 2 or rows.shape[1] != n:
        raise InputError(f"masked rows of shape {rows.shape}: expected (subjects, {n:,}) for "
                         "this mask. Fix: use the mask the rows were made with.")
    out = np.zeros((len(rows), *mask.shape), dtype=np.float32)
    out[:, mask] = rows  # the subject axis first: each row fills one volume in C order
    return out


class FlatBlock:
    """One image block (columns ``start .. start + n``) of a flat array, with its mask."""

    def __init__(self, path: str | Path, start: int, mask: np.ndarray) -> None:
        self.path, self.start, self.mask = Path(path), int(start), mask
        self.n = int(mask.sum())
        self._array: np.ndarray | None = None

    def array(self) -> np.ndarray:
        """The flat array, memory-mapped (opened once)."""
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return self._array

    def read_rows(self, rows: list[int]) -> np.ndarray:
        """Rows ``rows`` unmasked: ``(B, D, H, W)`` float32, in the order given."""
        order = np.argsort(rows, kind="stable")
        sorted_rows = np.asarray(rows)[order]  # ascending: sequential reads
        block = self.array()[sorted_rows, self.start:self.start + self.n]  # (B, n)
        volumes = unmask(block, self.mask)
        return volumes[np.argsort(order, kind="stable")]

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers reopen the memory map
        return {**self.__dict__, "_array": None}


@dataclass(frozen=True, eq=False)
class FlatRow:
    """One subject of a flat array: ``read_volume()`` gives its ``(D, H, W)`` volume."""

    source: FlatBlock
    row: int

    def read_volume(self) -> np.ndarray:
        return self.source.read_rows([self.row])[0]


@dataclass(frozen=True, eq=False)
class MaskedVolume:
    """A per-subject array multiplied by a mask when read."""

    path: str
    mask: np.ndarray

    def read_volume(self) -> np.ndarray:
        arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        return np.where(self.mask, np.asarray(arr).reshape(self.mask.shape), 0).astype(
            np.float32)


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
