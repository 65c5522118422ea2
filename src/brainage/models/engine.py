"""Batched prediction with ``torch.inference_mode`` (shared by training, prediction and OOD scores)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from brainage.data.datasets import ScanDataset
from brainage.models.base import BrainAgeModel


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def predict_dataset(model: BrainAgeModel, dataset: ScanDataset, batch_size: int = 8,
                    device: str | torch.device | None = None, num_workers: int = 0
                    ) -> np.ndarray:
    """Predicted age of every item, in dataset order (no padding, no duplicates).

    Args:
        model: Network taking the covariates it declares (sex, stage1_age).
        dataset: Items as produced by :class:`ScanDataset`.
        batch_size: Scans per forward pass.
        device: Where to run; default CUDA if available.
        num_workers: DataLoader workers.

    Returns:
        ``(N,)`` float64 predictions.
    """
    from brainage.models.base import forward_batch

    dev = torch.device(device) if device is not None else default_device()
    was_training = model.training
    model.eval().to(dev)
    out = np.empty(len(dataset), dtype=np.float64)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    with torch.inference_mode():
        for batch in loader:
            idx = batch["index"].numpy()
            moved = {k: v.to(dev) for k, v in batch.items() if torch.is_tensor(v)}
            out[idx] = forward_batch(model, moved).float().cpu().numpy()  # (B,)
    model.train(was_training)
    return out


def predict_features(model: BrainAgeModel, dataset: ScanDataset, batch_size: int = 8,
                     device: str | torch.device | None = None) -> np.ndarray:
    """``forward_features`` of every item, in dataset order: ``(N, F)`` float64."""
    dev = torch.device(device) if device is not None else default_device()
    was_training = model.training
    model.eval().to(dev)
    out = np.empty((len(dataset), int(model.num_features)), dtype=np.float64)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with torch.inference_mode():
        for batch in loader:
            z = model.forward_features(batch["image"].to(dev))  # (B, C, D, H, W) -> (B, F)
            out[batch["index"].numpy()] = z.double().cpu().numpy()
    model.train(was_training)
    return out
