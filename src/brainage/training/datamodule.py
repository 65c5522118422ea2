"""The Lightning DataModule of one fold: train/val loaders over prepared scans.

Evaluation loaders never pad: validation and prediction see every scan exactly once, also
under DDP (each rank gets an unrepeated shard and metrics are summed across ranks). Kept
apart from :mod:`brainage.data.datasets` so that prediction does not import Lightning.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from brainage.data.datasets import ScanDataset, Transform, fold_tables
from brainage.data.splits_file import Splits

#: Largest in-memory cache of staged training images (a 6 mm CPU preset needs ~0.1 MB a scan).
STAGE_CACHE_BYTES = 4 * 2**30


class BrainAgeDataModule(L.LightningDataModule):
    """Train/val loaders of one fold; unrepeated (unpadded) evaluation shards under DDP.

    Use with ``Trainer(use_distributed_sampler=False)``: this module makes its own samplers.

    Args:
        train: Training dataset (augmented if it has a transform).
        val: Validation dataset or None (no early stopping then).
        batch_size: Training batch size; evaluation uses the same size without padding.
        num_workers: DataLoader workers.
        seed: Shuffling seed (distributed sampler).
    """

    def __init__(self, train: ScanDataset, val: ScanDataset | None, batch_size: int = 8,
                 num_workers: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.train_set, self.val_set = train, val
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed

    @classmethod
    def from_fold(cls, table: pd.DataFrame, splits: Splits, fold: int, batch_size: int = 8,
                  num_workers: int = 0, seed: int = 0, transform: Transform | None = None
                  ) -> BrainAgeDataModule:
        """Train/val scans (with an age) of `fold` of `splits`, from a prepared table.

        Args:
            table: ``PreparedCohort.table`` (``array_path``, age, sex, [stage1_age]).
            splits: Subject splits; `fold` selects the roles.
            fold: Fold index.
            batch_size, num_workers, seed: As the constructor.
            transform: Training-only augmentation.
        """
        parts = fold_tables(table, splits, fold)
        train = ScanDataset.from_table(parts["train"], transform=transform)
        val = ScanDataset.from_table(parts["val"]) if len(parts["val"]) else None
        return cls(train, val, batch_size, num_workers, seed)

    def stage_inputs(self, stage: Any, max_bytes: int = STAGE_CACHE_BYTES) -> bool:
        """Let the datasets apply a model's parameter-free input stage (pooling, intensity
        bins) once per scan instead of the model at every step.

        Returns:
            True when the datasets now yield staged images (run the model under
            ``model.staged_inputs()``); False when the stage is the identity or the cache
            would exceed `max_bytes`.
        """
        sets = [d for d in (self.train_set, self.val_set) if d is not None and len(d)]
        if stage.is_identity or sum(d.staged_bytes(stage) for d in sets) > max_bytes:
            return False
        for d in sets:
            d.set_stage(stage)
        return True

    def _world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 1, 0
        return trainer.world_size, trainer.global_rank

    def _loader(self, dataset: ScanDataset, sampler: Any, shuffle: bool) -> DataLoader:
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler,
                          shuffle=shuffle if sampler is None else False,
                          num_workers=self.num_workers, persistent_workers=False,
                          pin_memory=torch.cuda.is_available())

    def train_dataloader(self) -> DataLoader:
        # Order depends only on (seed, epoch): Lightning calls set_epoch, so a resumed run
        # sees the same batches as an uninterrupted one (and ranks see disjoint shards).
        world, rank = self._world()
        sampler = DistributedSampler(self.train_set, num_replicas=world, rank=rank,
                                     shuffle=True, seed=self.seed)
        return self._loader(self.train_set, sampler, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        if self.val_set is None or len(self.val_set) == 0:
            return []
        world, rank = self._world()
        sampler = None if world == 1 else unrepeated_sampler(self.val_set, world, rank)
        return self._loader(self.val_set, sampler, shuffle=False)


def unrepeated_sampler(dataset: Dataset, world: int, rank: int) -> Any:
    """Each rank gets every ``world``-th item, without padding (shards may differ by one)."""
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

    return UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
