"""Torch datasets over prepared (cached) scans, and the Lightning DataModule of one fold.

A prepared cohort stores one float16 array per scan (memory-mapped here, converted to
float32 per item). Items are dicts::

    image       (1, D, H, W) float32
    age         () float32, NaN when unknown
    sex         (2,) float32 one-hot (column 0 female, 1 male; zeros when unknown)
    index       () int64, row of the dataset's table (maps predictions back)
    stage1_age  () float32, only when the dataset carries stage-1 predictions (cascade)

The Lightning DataModule of one fold is in :mod:`brainage.training.datamodule` (kept apart so
that prediction does not import Lightning).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError

#: A ``.npy`` path, an in-memory volume, or a lazy volume with ``read_volume()`` (a row of a
#: flat OpenBHB array: :class:`brainage.data.openbhb_volumes.FlatRow`).
Image = Any
Transform = Callable[[torch.Tensor], torch.Tensor]


def sex_codes(sex: Sequence[object]) -> np.ndarray:
    """``"F"``/``"M"``/missing -> ``(N, 2)`` float32 one-hot (zeros when unknown)."""
    out = np.zeros((len(sex), 2), dtype=np.float32)
    for i, s in enumerate(sex):
        if s == "F":
            out[i, 0] = 1.0
        elif s == "M":
            out[i, 1] = 1.0
    return out


def load_array(image: Image) -> np.ndarray:
    """A (D, H, W) or (1, D, H, W) array from a ``.npy`` path (memory-mapped), memory or
    a lazy volume (``image.read_volume()``).

    Raises:
        BrainAgeError: the file is missing or not a 3D volume.
    """
    if isinstance(image, np.ndarray):
        arr = image
    elif hasattr(image, "read_volume"):
        arr = image.read_volume()
    else:
        try:
            arr = np.load(image, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise BrainAgeError(
                f"{image}: cannot read the prepared array ({exc}). "
                "Fix: re-run `brainage prepare` for this cohort."
            ) from exc
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3:
        raise BrainAgeError(f"{image if not isinstance(image, np.ndarray) else 'array'}: "
                            f"expected a 3D volume, got shape {arr.shape}.")
    return arr


class ScanDataset(Dataset):
    """One item per scan: image, age, sex and (for a cascade) the stage-1 prediction.

    Args:
        images: ``.npy`` paths (memory-mapped) or in-memory 3D arrays.
        age: Ages in years (NaN when unknown); default all unknown.
        sex: ``"F"``/``"M"``/None per scan; default all unknown.
        stage1_age: Stage-1 predicted ages (cascade stage 2 only).
        transform: Applied to the ``(1, D, H, W)`` float32 image (training augmentation).

    A dataset given a model's parameter-free input stage (:meth:`set_stage`) yields staged
    images (pooled, intensity-binned) instead, computed once per scan and kept in memory
    when there is no augmentation; the model then runs under ``model.staged_inputs()``.
    """

    def __init__(self, images: Sequence[Image], age: Sequence[float] | None = None,
                 sex: Sequence[object] | None = None,
                 stage1_age: Sequence[float] | None = None,
                 transform: Transform | None = None) -> None:
        n = len(images)
        self.images = list(images)
        self.age = np.full(n, np.nan, np.float32) if age is None else np.asarray(age, np.float32)
        self.sex = sex_codes([None] * n if sex is None else list(sex))
        self.stage1_age = None if stage1_age is None else np.asarray(stage1_age, np.float32)
        self.transform = transform
        self.stage: Transform | None = None
        self._staged: dict[int, torch.Tensor] = {}
        self._shape: tuple[int, ...] | None = None
        for name, arr in (("age", self.age), ("stage1_age", self.stage1_age)):
            if arr is not None and len(arr) != n:
                raise BrainAgeError(f"{name} has {len(arr)} values for {n} images.")

    @classmethod
    def from_table(cls, table: pd.DataFrame, image_column: str = "array_path",
                   **kwargs: Any) -> ScanDataset:
        """Build from a table with ``image_column``, ``age``, ``sex`` (and ``stage1_age``)."""
        age = pd.to_numeric(table["age"], errors="coerce").to_numpy(np.float32) \
            if "age" in table else None
        sex = [None if pd.isna(s) else str(s) for s in table["sex"]] if "sex" in table else None
        if "stage1_age" in table and "stage1_age" not in kwargs:
            kwargs["stage1_age"] = table["stage1_age"].to_numpy(np.float32)
        return cls(list(table[image_column]), age=age, sex=sex, **kwargs)

    def __len__(self) -> int:
        return len(self.images)

    def set_stage(self, stage: Transform | None) -> None:
        """Yield ``stage(image)`` (a model's ``input_stage``) instead of the image; cached
        per scan unless there is an augmentation (None = plain images again)."""
        self.stage, self._staged = stage, {}

    def staged_bytes(self, stage: Any) -> int:
        """Memory the cache of `stage`'s outputs would take for the whole dataset."""
        pooled = [s // stage.pool for s in self.shape()]
        return len(self) * stage.out_channels * int(np.prod(pooled)) * 4

    def image(self, i: int, array: np.ndarray | None = None) -> torch.Tensor:
        """Image `i` as the model takes it: ``(1, D, H, W)``, augmented, staged if set
        (`array`: its volume when already read)."""
        if i in self._staged:
            return self._staged[i]
        arr = load_array(self.images[i]) if array is None else array
        image = torch.from_numpy(np.array(arr, dtype=np.float32))[None]  # (D,H,W) -> (1,D,H,W)
        if self.transform is not None:
            image = self.transform(image)
        if self.stage is not None:
            with torch.no_grad():
                image = self.stage(image[None])[0]  # (1, D, H, W) -> (C', D/p, H/p, W/p)
            if self.transform is None:
                self._staged[i] = image
        return image

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.item(i)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, torch.Tensor]]:
        """The items of a batch (the DataLoader's batched fetch): rows of a flat array are
        read and unmasked together, the subject axis first."""
        todo = [i for i in indices if i not in self._staged]
        read = dict(zip(todo, read_together([self.images[i] for i in todo]), strict=True))
        return [self.item(i, read.get(i)) for i in indices]

    def item(self, i: int, array: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Item `i` (`array`: its volume when already read)."""
        image = self.image(i, array)
        item = {"image": image, "age": torch.tensor(self.age[i]),
                "sex": torch.from_numpy(self.sex[i]), "index": torch.tensor(i)}
        if self.stage1_age is not None:
            item["stage1_age"] = torch.tensor(self.stage1_age[i])
        return item

    def shape(self) -> tuple[int, ...]:
        """Spatial shape of the first image (read once)."""
        if self._shape is None:
            self._shape = tuple(load_array(self.images[0]).shape)
        return self._shape


def read_together(images: Sequence[Image]) -> list[np.ndarray | None]:
    """Volumes of the rows of flat arrays among `images` (objects with ``source`` and
    ``row``), each array's rows read in one call to ``source.read_rows``; None for others."""
    out: list[np.ndarray | None] = [None] * len(images)
    groups: dict[int, list[int]] = {}
    for k, image in enumerate(images):
        if getattr(image, "source", None) is not None:
            groups.setdefault(id(image.source), []).append(k)
    for ks in groups.values():
        volumes = images[ks[0]].source.read_rows([images[k].row for k in ks])  # (B, D, H, W)
        for k, volume in zip(ks, volumes, strict=True):
            out[k] = volume
    return out


def augmentation(degrees: float = 3.0, scale: float = 0.03, translation: float = 2.0,
                 flip: bool = False, kind: str = "affine") -> Transform:
    """Training-only transform of a ``(1, D, H, W)`` image.

    Args:
        degrees, scale, translation: Range of the random affine (``kind="affine"``); for
            ``kind="shift"`` only ``translation`` is used, rounded to whole voxels.
        flip: Also flip axis 0 (left-right) with probability 1/2.
        kind: ``affine`` (torchio RandomAffine with linear interpolation, about 50 ms per
            2 mm volume on one core) or ``shift`` (random whole-voxel shift, exact and about
            10x cheaper: the choice for CPU training).
    """
    if kind == "shift":
        return _shift_transform(int(round(translation)), flip)
    if kind != "affine":
        raise BrainAgeError(f"augment kind {kind!r}: expected 'affine' or 'shift'.")
    import torchio as tio

    parts = [tio.RandomAffine(scales=scale, degrees=degrees, translation=translation,
                              image_interpolation="linear", default_pad_value=0.0)]
    if flip:
        parts.append(tio.RandomFlip(axes=(0,)))
    compose = tio.Compose(parts)
    return lambda image: compose(image)  # (1, D, H, W) -> (1, D, H, W)


def _shift_transform(max_shift: int, flip: bool) -> Transform:
    """Random whole-voxel shift in ``[-max_shift, max_shift]`` per axis (+ optional flip)."""

    def transform(image: torch.Tensor) -> torch.Tensor:
        if max_shift > 0:
            shifts = torch.randint(-max_shift, max_shift + 1, (3,)).tolist()
            image = torch.roll(image, shifts, dims=(1, 2, 3))  # background wraps: it is 0
        if flip and bool(torch.randint(0, 2, ()).item()):
            image = torch.flip(image, dims=(1,))
        return image

    return transform


def fold_tables(table: pd.DataFrame, splits: Splits, fold: int
                ) -> dict[str, pd.DataFrame]:
    """Scans of each role of `fold`; scans without an age are left out of train/val.

    Warns with the number of scans dropped (they are still predicted later).
    """
    out: dict[str, pd.DataFrame] = {}
    for role in ("train", "val"):
        rows = table[table["participant_id"].isin(splits.subjects(role, fold))]
        no_age = rows["age"].isna()
        if no_age.any():
            warnings.warn(f"fold {fold} {role}: {int(no_age.sum())} scan(s) without an age are "
                          "left out of training (they are still predicted).", stacklevel=2)
        out[role] = rows[~no_age].reset_index(drop=True)
    if out["train"].empty:
        raise BrainAgeError(f"fold {fold} has no training scan with an age. "
                            "Fix: add ages to the cohort or use other splits.")
    return out
