"""OpenBHB volumes read lazily: the challenge's masks, flat rows unmasked per batch.

A flat challenge row holds the masked VBM block (519,945 voxels: CAT12 GM TPM > 0.05), the
masked quasi-raw block (1,827,095: brain mask > 0), then surface maps and ROI tables. A
batch of rows is read together and unmasked with the subject axis first
(``out[:, mask] = rows``: C order, as the masks index a volume); per-subject unmasking
followed by a reshape scrambles the volumes. :class:`FlatRow` and :class:`MaskedVolume`
are the lazy images a :class:`~brainage.data.datasets.ScanDataset` reads
(``read_volume()``; rows of one array are read together through ``source.read_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from brainage.errors import InputError, NotFoundError

#: modality -> (mask file of the challenge, threshold (mask = value > threshold), voxels)
MASKS: dict[str, tuple[str, float, int]] = {
    "vbm": ("cat12vbm_space-MNI152_desc-gm_TPM.nii.gz", 0.05, 519_945),
    "quasiraw": ("quasiraw_space-MNI152_desc-brain_T1w.nii.gz", 0.0, 1_827_095),
}
#: Folders, relative to the data, searched for the masks.
MASK_DIRS: tuple[str, ...] = (".", "resource", "masks")
#: Width of a flat challenge row: VBM + quasi-raw + surfaces (8 x 163,842) + ROIs (1,796).
FLAT_WIDTH = 3_659_572


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
