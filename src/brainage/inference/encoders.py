"""A run member as a representation: what ``brainage probe`` reads and ``predict`` uses.

The representation of a scan is the L2-normalised projection for a contrastive run (what
Barbano et al. probe) and ``forward_features`` for a supervised one. With its fitted age
read-out (:class:`brainage.estimators.readout.RidgeReadout`) the member predicts age like
any model: ``Predictor`` uses it for runs of kind ``encoder``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from brainage.data.datasets import ScanDataset
from brainage.estimators.readout import RidgeReadout
from brainage.models import BrainAgeModel, load_model
from brainage.models.engine import default_device
from brainage.models.projection import ProjectionHead, has_projection, load_projection

#: Representations a member can give.
REPRESENTATIONS = ("auto", "projection", "features")


class MemberEncoder(nn.Module):
    """Encoder (+ projection head) (+ age read-out) of one run member.

    Args:
        encoder: The registry model; its ``forward_features`` encodes.
        projection: The contrastive projection head, or None (features are the
            representation).
        readout: The fitted linear age read-out, or None.
    """

    covariates: tuple[str, ...] = ()  # the representation takes the image only

    def __init__(self, encoder: BrainAgeModel, projection: ProjectionHead | None = None,
                 readout: RidgeReadout | None = None) -> None:
        super().__init__()
        self.encoder, self.projection = encoder, projection
        self.readout = readout
        self.config = {"name": f"{encoder.config.get('name', 'encoder')}+readout"}
        if readout is not None:
            self.register_buffer("coef", torch.from_numpy(readout.coef_))  # (F,) float64
            self._prepare = None if readout.mean_ is None else (
                torch.from_numpy(readout.mean_), torch.from_numpy(readout.scale_))

    @property
    def representation(self) -> str:
        """``projection`` or ``features``."""
        return "projection" if self.projection is not None else "features"

    def represent(self, x: Tensor) -> Tensor:
        """Images ``(B, C, D, H, W)`` -> representations ``(B, F)``."""
        features = self.encoder.forward_features(x)  # (B, F)
        return features if self.projection is None else self.projection(features)

    def forward(self, x: Tensor) -> Tensor:
        """Predicted age ``(B,)`` from the read-out (float64 arithmetic)."""
        if self.readout is None:
            raise RuntimeError("this member has no age read-out; run `brainage probe` first.")
        z = self.represent(x).double()
        if self._prepare is not None:
            z = (z - self._prepare[0].to(z)) / self._prepare[1].to(z)
        return z @ self.coef.to(z.device) + self.readout.intercept_  # (B, F) @ (F,) -> (B,)


def load_member(member_dir: str | Path, representation: str = "auto",
                readout: bool = False) -> MemberEncoder:
    """Load a run member for probing (`readout` False) or prediction (True).

    Args:
        member_dir: The member's folder (``weights.safetensors``, ``model.json``, and for a
            contrastive run ``projection.*``).
        representation: ``auto`` (the projection when there is one), ``projection`` or
            ``features`` (the encoder's ``forward_features``).
        readout: Also load the fitted age read-out.

    Raises:
        BrainAgeError: missing files, or a projection asked of a supervised run.
    """
    from brainage.errors import InputError

    if representation not in REPRESENTATIONS:
        raise InputError(f"representation {representation!r}: expected one of "
                         f"{', '.join(REPRESENTATIONS)}.")
    folder = Path(member_dir)
    encoder = load_model(folder)
    projection = None
    if representation in ("auto", "projection") and has_projection(folder):
        projection = load_projection(folder)
    elif representation == "projection":
        raise InputError(f"{folder}: no projection head (a supervised run). Fix: probe its "
                         "features (representation 'features' or 'auto').")
    head = RidgeReadout.load(folder) if readout else None
    return MemberEncoder(encoder, projection, head).eval()


def extract(member: MemberEncoder, dataset: ScanDataset, batch_size: int = 8,
            device: str | torch.device | None = None) -> np.ndarray:
    """Representations of every item, in dataset order: ``(N, F)`` float64."""
    dev = torch.device(device) if device is not None else default_device()
    member.eval().to(dev)
    rows: dict[int, np.ndarray] = {}
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    with torch.inference_mode():
        for batch in loader:
            z = member.represent(batch["image"].to(dev)).double().cpu().numpy()  # (B, F)
            rows.update(zip(batch["index"].tolist(), z, strict=True))
    return np.stack([rows[i] for i in range(len(dataset))])


def describe(member: MemberEncoder) -> dict[str, Any]:
    """What a probe records about the representation it read."""
    width = member.projection.out_features if member.projection is not None \
        else member.encoder.num_features
    return {"representation": member.representation, "n_features": int(width),
            "encoder": member.encoder.config.get("name")}
