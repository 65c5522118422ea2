"""Datasets over prepared float16 arrays (the DataModule: tests/training/test_datamodule.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from brainage.data.datasets import (
    ScanDataset,
    augmentation,
    fold_tables,
    load_array,
    sex_codes,
)
from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError

SHAPE = (20, 24, 18)


def test_items_are_float32_with_channel_axis(arrays):
    ds = ScanDataset(arrays, age=[20, 30, np.nan, 50, 60], sex=["F", "M", None, "F", "M"],
                     stage1_age=[21, 31, 41, 51, 61])
    item = ds[1]
    assert item["image"].shape == (1, *SHAPE) and item["image"].dtype == torch.float32
    assert torch.allclose(item["image"][0, 0, 0], 1 + torch.arange(18) / 100, atol=1e-3)
    assert item["age"] == 30 and item["stage1_age"] == 31 and item["index"] == 1
    assert item["sex"].tolist() == [0.0, 1.0] and ds[2]["sex"].tolist() == [0.0, 0.0]
    assert torch.isnan(ds[2]["age"]) and ds.shape() == SHAPE


def test_arrays_are_memory_mapped_and_checked(arrays, tmp_path):
    assert isinstance(load_array(arrays[0]), np.memmap)
    np.save(tmp_path / "flat.npy", np.zeros((4, 5), np.float16))
    with pytest.raises(BrainAgeError, match="expected a 3D volume"):
        load_array(tmp_path / "flat.npy")
    with pytest.raises(BrainAgeError, match="brainage prepare"):
        load_array(tmp_path / "missing.npy")
    assert load_array(np.zeros((1, *SHAPE))).shape == SHAPE


def test_from_table_reads_age_sex_and_stage1(arrays):
    table = pd.DataFrame({"array_path": arrays[:2], "age": ["40", None], "sex": ["M", pd.NA],
                          "stage1_age": [42.0, 43.0]})
    ds = ScanDataset.from_table(table)
    assert ds[0]["age"] == 40 and torch.isnan(ds[1]["age"]) and ds[1]["stage1_age"] == 43
    assert sex_codes(["F", "M", None]).tolist() == [[1, 0], [0, 1], [0, 0]]


def test_fold_tables_drop_scans_without_age_with_a_warning():
    table = pd.DataFrame({"participant_id": ["a", "a", "b", "c"], "age": [30, np.nan, 40, 50]})
    splits = Splits("user", None, {}, [{"train": ["a", "b"], "val": ["c"]}])
    with pytest.warns(UserWarning, match="1 scan"):
        parts = fold_tables(table, splits, 0)
    assert parts["train"]["age"].tolist() == [30, 40] and len(parts["val"]) == 1
    with pytest.raises(BrainAgeError, match="no training scan"):
        fold_tables(table, Splits("user", None, {}, [{"train": ["x"]}]), 0)




def test_augmentation_keeps_shape_and_is_seeded():
    image = torch.zeros(1, *SHAPE)
    image[0, 5:15, 6:18, 4:14] = 1
    aug = augmentation(degrees=10, scale=0.1, translation=2, flip=True)
    torch.manual_seed(0)
    a = aug(image)
    torch.manual_seed(0)
    b = aug(image)
    assert a.shape == image.shape and torch.equal(a, b) and not torch.equal(a, image)


def test_shift_augmentation_moves_whole_voxels_within_range():
    image = torch.zeros(1, *SHAPE)
    image[0, 5:15, 6:18, 4:14] = torch.rand(10, 12, 10) + 1
    aug = augmentation(translation=2, kind="shift")
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        out = aug(image)
        assert torch.equal(out.flatten().sort().values, image.flatten().sort().values)
        nz = out[0].nonzero().min(0).values - torch.tensor([5, 6, 4])
        assert nz.abs().max() <= 2
        seen.add(tuple(nz.tolist()))
    assert len(seen) > 5
    with pytest.raises(BrainAgeError, match="augment kind"):
        augmentation(kind="elastic")


def test_staged_images_are_computed_once_and_cached(arrays, tmp_path):
    from brainage.models.input_stage import InputStage

    stage = InputStage(pool=2, bins=3, bin_range=(0.0, 4.0))
    ds = ScanDataset(arrays, age=[20, 30, 40, 50, 60])
    plain = ds[2]["image"]
    ds.set_stage(stage)
    first = ds[2]["image"]
    assert first.shape == (3, 10, 12, 9)
    torch.testing.assert_close(first, stage(plain[None])[0])
    assert ds.staged_bytes(stage) == 5 * 3 * 10 * 12 * 9 * 4
    for p in arrays:  # the cache no longer reads the files
        (tmp_path / p).unlink()
    assert ds[2]["image"] is first


def test_augmented_staged_images_are_not_cached(arrays):
    from brainage.models.input_stage import InputStage

    ds = ScanDataset(arrays, age=[20, 30, 40, 50, 60], transform=lambda im: im + 1.0)
    ds.set_stage(InputStage(pool=2))
    assert ds[0]["image"] is not ds[0]["image"]
