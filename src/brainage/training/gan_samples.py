"""A grid of real vs reconstructed slices, saved as PNG after every GAN training epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from brainage.data.datasets import ScanDataset
from brainage.io import atomic_path


class SampleGrid(L.Callback):
    """Reconstruct fixed volumes after each epoch and write ``epoch-<NNN>.png``.

    The generator has no dropout or normalisation, so reconstructing draws no random
    numbers: the callback leaves training exactly as it would be without it.

    Args:
        volumes: ``(N, 1, D, H, W)`` float32 inputs (held-out scans when there are any).
        labels: A caption per volume.
        folder: Where the PNGs go.
    """

    def __init__(self, volumes: torch.Tensor, labels: list[str], folder: Path) -> None:
        self.volumes, self.labels, self.folder = volumes, labels, Path(folder)

    @classmethod
    def from_dataset(cls, dataset: ScanDataset, n: int, folder: Path) -> SampleGrid:
        """The first `n` scans of `dataset` (fixed across epochs and resumes)."""
        idx = list(range(min(n, len(dataset))))
        volumes = torch.stack([dataset.image(i) for i in idx])  # (N, 1, D, H, W)
        labels = [f"age {float(dataset.age[i]):.1f}" for i in idx]
        return cls(volumes, labels, folder)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero or not len(self.volumes):
            return
        from brainage.drawing import reconstruction_grid

        with torch.no_grad():
            fake = pl_module.generator(self.volumes.to(pl_module.device)).float().cpu()
        real = [v[0].numpy() for v in self.volumes]
        recon = [np.asarray(f[0].numpy()) for f in fake]
        epoch = trainer.current_epoch
        png = reconstruction_grid(real, recon, self.labels, f"epoch {epoch}: real vs G(x)")
        with atomic_path(self.folder / f"epoch-{epoch:03d}.png") as tmp:
            tmp.write_bytes(png)
