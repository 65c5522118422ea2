"""The Lightning DataModule of one fold (training layer: the data layer has no Lightning)."""

from __future__ import annotations

import torch

from brainage.data.datasets import ScanDataset
from brainage.training.datamodule import BrainAgeDataModule, unrepeated_sampler

SHAPE = (20, 24, 18)


def test_evaluation_shards_are_not_padded(arrays):
    ds = ScanDataset(arrays)
    shards = [list(unrepeated_sampler(ds, 2, r)) for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == [0, 1, 2, 3, 4]  # 5 items, no duplicate
    data = BrainAgeDataModule(ds, ds, batch_size=2)
    seen = torch.cat([b["index"] for b in data.val_dataloader()])
    assert seen.tolist() == [0, 1, 2, 3, 4]

def test_training_order_depends_on_seed_and_epoch_only(arrays):
    ds = ScanDataset(arrays)

    def order(epoch: int, seed: int = 0) -> list[int]:
        loader = BrainAgeDataModule(ds, None, batch_size=5, seed=seed).train_dataloader()
        loader.sampler.set_epoch(epoch)
        return next(iter(loader))["index"].tolist()

    assert order(0) == order(0) and sorted(order(0)) == [0, 1, 2, 3, 4]
    assert order(0) != order(1) or order(0) != order(2)
    assert BrainAgeDataModule(ds, None).val_dataloader() == []

def test_datamodule_stages_only_when_it_pays_and_fits(arrays):
    from brainage.models.input_stage import InputStage

    train = ScanDataset(arrays[:3], age=[20, 30, 40])
    data = BrainAgeDataModule(train, None)
    assert not data.stage_inputs(InputStage())  # identity: nothing to cache
    assert not data.stage_inputs(InputStage(pool=2), max_bytes=100)  # would not fit
    assert train.stage is None
    assert data.stage_inputs(InputStage(pool=2))
    assert train[0]["image"].shape == (1, 10, 12, 9)
