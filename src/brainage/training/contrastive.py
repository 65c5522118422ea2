"""Contrastive pretraining as a LightningModule: a registry encoder, a projection head, views.

Barbano et al. (ISBI 2023): every subject gives V views; the encoder's features
(``forward_features``, ``(B, F)``) go through the projection head to L2-normalised
``(B, V, D)`` projections, and a kernelised supervised contrastive loss on the ages pulls
subjects of similar age together (:mod:`brainage.losses.contrastive`, loss ``contrastive``).

The task is the regression task with another step: it shares the optimiser, schedule,
``channels_last``, compilation, checkpoints (random states included, so a resumed run
continues exactly), the Trainer and DDP set-up (:mod:`brainage.training.trainer`). Under
DDP each rank's loss compares the subjects of its own batch (no all-gather).

With ``augment: none`` the V views of a subject are identical (the published runs), so the
encoder runs once per subject and its projection is repeated V times: the loss, and the
gradients, equal those of V identical forward passes (batch-norm statistics of duplicated
samples are those of the originals), at 1/V of the encoder's work.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from brainage.data.datasets import ScanDataset, fold_tables
from brainage.data.splits_file import Splits
from brainage.errors import InputError
from brainage.models.projection import ProjectionHead
from brainage.training.datamodule import BrainAgeDataModule
from brainage.training.module import RegressionTask


class MultiViewDataset(Dataset):
    """The items of a :class:`ScanDataset` with V augmented views: image ``(V, C, D, H, W)``.

    With spec ``none`` the item keeps its single image ``(C, D, H, W)`` (staged and cached
    like any training image) and the task repeats its projection.

    Args:
        base: Dataset of the subjects (without a transform).
        spec: View augmentation (:func:`brainage.data.views.view_transform`).
        views: Views per subject.
    """

    def __init__(self, base: ScanDataset, spec: Any = "none", views: int = 2) -> None:
        from brainage.data.views import parse_spec, view_transform

        self.base, self.views = base, int(views)
        self.identical = not parse_spec(spec)
        self.transform = None if self.identical else view_transform(spec)
        self.stage: Any = None

    def __len__(self) -> int:
        return len(self.base)

    def staged_bytes(self, stage: Any) -> int:
        """Memory of the staged-image cache (none is kept for augmented views)."""
        return self.base.staged_bytes(stage) if self.identical else 0

    def set_stage(self, stage: Any) -> None:
        """Yield staged images: cached by the base dataset, or staged after augmenting."""
        if self.identical:
            self.base.set_stage(stage)
        else:
            self.stage = stage

    def _views(self, item: dict[str, Tensor]) -> dict[str, Tensor]:
        if self.transform is None:
            return item
        image = item["image"]  # (C, D, H, W), not staged
        views = torch.stack([self.transform(image.clone()) for _ in range(self.views)])
        if self.stage is not None:
            with torch.no_grad():
                views = self.stage(views)  # (V, C, D, H, W) -> (V, C', d, h, w)
        return {**item, "image": views}

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return self._views(self.base[i])

    def __getitems__(self, indices: list[int]) -> list[dict[str, Tensor]]:
        """A batch of items (the base reads rows of flat arrays together)."""
        return [self._views(item) for item in self.base.__getitems__(indices)]


def contrastive_data(config: Any, table: pd.DataFrame, splits: Splits, fold: int
                     ) -> BrainAgeDataModule:
    """DataModule of `fold` for pretraining: its train (and val) scans with an age, as views."""
    parts = fold_tables(table, splits, fold)
    spec = config.contrastive

    def views(rows: pd.DataFrame) -> MultiViewDataset:
        return MultiViewDataset(ScanDataset.from_table(rows), spec.augment, spec.views)

    val = views(parts["val"]) if len(parts["val"]) else None
    return BrainAgeDataModule(views(parts["train"]), val, config.batch_size,  # type: ignore[arg-type]
                              config.num_workers, config.seed)


def feature_parameters(model: dict[str, Any]) -> set[str]:
    """Names of the parameters ``forward_features`` uses (the encoder without its head),
    found from the autograd graph of a forward pass on the meta device (no memory)."""
    from brainage.models import create_model

    with torch.device("meta"):
        net = create_model(model["name"], **model.get("kwargs", {}))
        shape = [max(64, m) * net.input_pool for m in net.min_input_shape]
        out = net.forward_features(torch.empty(2, net.in_channels, *shape))
    names = {id(p): n for n, p in net.named_parameters()}
    used, stack, seen = set(), [out.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad: a leaf parameter
        if variable is not None and id(variable) in names:
            used.add(names[id(variable)])
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return used


class ContrastiveTask(RegressionTask):
    """Pretrain a registry encoder with a projection head and a contrastive loss on age.

    Args:
        model, loss, optim, scheduler, monitor, channels_last, compile: As
            :class:`RegressionTask` (``loss`` must read ``projection``, e.g. ``contrastive``).
        contrastive: Fields of :class:`~brainage.training.network_config.ContrastiveSpec`.
        ema: Must be 0 (no weight average is kept).
    """

    metric = "loss"
    provides = ("projection",)

    def __init__(self, model: dict[str, Any], loss: dict[str, Any], optim: dict[str, Any],
                 scheduler: dict[str, Any], contrastive: dict[str, Any],
                 monitor: str = "train_loss", channels_last: bool = False, ema: float = 0.0,
                 compile: bool = False) -> None:
        if ema:
            raise InputError(f"ema={ema!r}: contrastive pretraining keeps no weight average. "
                             "Fix: --set ema=0.")
        super().__init__(model, loss, optim, scheduler, monitor, channels_last, 0.0, compile)
        self.views = int(contrastive["views"])
        self.projection = ProjectionHead(self.model.num_features, contrastive["projection"])
        used = feature_parameters(model)
        for name, param in self.model.named_parameters():  # the age head: not trained (DDP
            param.requires_grad_(name in used)  # refuses parameters without gradients)

    @classmethod
    def from_config(cls, config: Any, monitor: str) -> ContrastiveTask:
        """The task of a config with a ``contrastive`` section."""
        from brainage.config import to_dict

        if config.contrastive is None:
            raise InputError("contrastive pretraining needs the config's 'contrastive' section "
                             "(views, augment, projection). Fix: -c contrastive, or a config "
                             "that inherits from it.")
        return cls(model=to_dict(config.model), loss=to_dict(config.loss),
                   optim=to_dict(config.optim), scheduler=to_dict(config.scheduler),
                   contrastive=to_dict(config.contrastive), monitor=monitor,
                   channels_last=config.channels_last, ema=config.ema, compile=config.compile)

    def _check_loss(self) -> None:
        if self.criterion.needs not in self.provides:
            raise InputError(
                f"contrastive pretraining needs a loss on the projections (loss.name: "
                f"contrastive); {self.criterion.name!r} reads {self.criterion.needs!r}. "
                f"Fix: -c contrastive, or `brainage train` for loss {self.criterion.name!r}.")

    def project(self, images: Tensor) -> Tensor:
        """Images ``(B, C, D, H, W)`` (identical views) or views ``(B, V, C, D, H, W)`` ->
        L2-normalised projections ``(B, V, D)``."""
        with self.input_mode():
            if images.ndim == 5:  # identical views: encode once, repeat the projection
                z = self.projection(self.model.forward_features(images))  # (B, D)
                return z[:, None].expand(-1, self.views, -1)
            b, v = images.shape[:2]
            z = self.projection(self.model.forward_features(images.flatten(0, 1)))  # (B·V, D)
            return z.reshape(b, v, -1)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """The representation ``(B, D)``: the first view's projection."""
        return self.project(batch["image"])[:, 0]

    def example_outputs(self, x: Tensor) -> dict[str, Tensor]:
        return {"projection": self.project(x)}

    def _loss(self, batch: dict[str, Tensor]) -> Tensor:
        return self.criterion({"projection": self.project(batch["image"])}, batch["age"])

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(batch["age"]), sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.log("val_loss", self._loss(batch), on_epoch=True, prog_bar=True,
                 batch_size=len(batch["age"]), sync_dist=True)
