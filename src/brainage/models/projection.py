"""The projection head of contrastive pretraining, saved next to its encoder (never pickled).

Barbano et al. (ISBI 2023) put ``Linear(512 -> 512) -> ReLU -> Linear(512 -> 128)`` and an
L2 normalisation after the ResNet-18 encoder; the normalised 128-d output is what the
contrastive loss compares and what the OpenBHB probes read. Here the input width is the
encoder's ``num_features`` and the widths are configurable (``contrastive.projection``).

Files, in the encoder's folder: ``projection.safetensors`` (weights) and
``projection.json`` (``in_features`` and ``widths``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F

from brainage.errors import InputError, NotFoundError
from brainage.io import atomic_path, parse_json_file, write_json

WEIGHTS = "projection.safetensors"
CONFIG = "projection.json"
FORMAT = "brainage-projection"


class ProjectionHead(nn.Module):
    """``Linear -> ReLU -> ... -> Linear`` then L2 normalisation: ``(B, F) -> (B, D)``.

    Args:
        in_features: Width F of the encoder's features.
        widths: Hidden widths then the output width D, e.g. ``(512, 128)``.
    """

    def __init__(self, in_features: int, widths: Sequence[int] = (512, 128)) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if in_features < 1 or not widths or min(widths) < 1:
            raise InputError(f"projection widths {widths!r} on {in_features} features: "
                             "expected positive widths, e.g. [512, 128].")
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            layers.append(nn.Linear(widths[i - 1] if i else in_features, width))
            if i < len(widths) - 1:
                layers.append(nn.ReLU(inplace=True))
        self.net = nn.Sequential(*layers)
        self.in_features, self.widths = int(in_features), widths
        self.out_features = widths[-1]

    def forward(self, features: Tensor) -> Tensor:
        return F.normalize(self.net(features), dim=1)  # (B, F) -> (B, D), unit rows

    @property
    def config(self) -> dict[str, Any]:
        """What rebuilds this head."""
        return {"in_features": self.in_features, "widths": self.widths}


def save_projection(head: ProjectionHead, directory: str | os.PathLike[str]) -> Path:
    """Write ``projection.safetensors`` and ``projection.json`` into `directory`."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    meta = {"format": FORMAT, **head.config}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"brainage_projection": json.dumps(meta)})
    write_json(out / CONFIG, meta)
    return out


def has_projection(directory: str | os.PathLike[str]) -> bool:
    """True when `directory` holds a saved projection head."""
    return (Path(directory) / CONFIG).is_file()


def load_projection(directory: str | os.PathLike[str]) -> ProjectionHead:
    """Rebuild a saved projection head (eval mode).

    Raises:
        NotFoundError: no projection files in `directory`.
        InputError: a damaged description or weights that do not fit it.
    """
    from safetensors.torch import load_file

    folder = Path(directory)
    if not has_projection(folder) or not (folder / WEIGHTS).is_file():
        raise NotFoundError(f"{folder}: no {CONFIG} and {WEIGHTS}. Fix: point to a member "
                            "folder of a run written by `brainage pretrain`.")
    meta = parse_json_file(folder / CONFIG, "pretrain again")
    try:
        head = ProjectionHead(int(meta["in_features"]), meta["widths"])
        head.load_state_dict(load_file(str(folder / WEIGHTS)), strict=True)
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"{folder / CONFIG}: damaged projection head ({exc}). "
                         "Fix: pretrain again, or restore the run folder.") from exc
    return head.eval()
