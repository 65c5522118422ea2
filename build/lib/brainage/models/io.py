"""Save and load registry models as ``weights.safetensors`` + ``model.json`` (never pickle).

``model.json`` holds the registry name, the resolved constructor kwargs and the parameter
count, so a folder alone rebuilds the network: ``load_model(folder)``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from brainage import __version__
from brainage.errors import InputError, NotFoundError
from brainage.io import atomic_path, parse_json_file, write_json
from brainage.models.base import BrainAgeModel

WEIGHTS = "weights.safetensors"
CONFIG = "model.json"
FORMAT = "brainage-model"
FORMAT_VERSION = 1


def count_parameters(model: Any) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())


def save_model(model: BrainAgeModel, directory: str | os.PathLike[str]) -> Path:
    """Write ``weights.safetensors`` and ``model.json`` into ``directory`` (each atomically).

    Args:
        model: A model built by :func:`~brainage.models.create_model` (it has ``config``).
        directory: Folder to write into; created if needed, other files are left alone.

    Returns:
        The directory.
    """
    from safetensors.torch import save_file

    config = getattr(model, "config", None) or {}
    if "name" not in config:
        raise InputError(
            "this model has no registry config. Fix: build it with brainage.models.create_model."
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "name": config["name"],
        "kwargs": config["kwargs"], "num_parameters": count_parameters(model),
        "brainage_version": __version__,
    }
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"brainage_model": json.dumps(meta)})
    write_json(out / CONFIG, meta)
    return out


def read_model_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check ``model.json`` of a saved model folder."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise NotFoundError(
            f"{path}: not found. Fix: point to a folder written by save_model "
            "(it holds model.json and weights.safetensors)."
        )
    meta = parse_json_file(path, "save the model again")
    if meta.get("format") != FORMAT or not isinstance(meta.get("kwargs"), dict):
        raise InputError(
            f"{path}: not a brainage model description (expected format {FORMAT!r} with "
            "name and kwargs)."
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise InputError(
            f"{path}: written by a newer brainage (format {meta['format_version']}). "
            "Fix: upgrade brainage."
        )
    return meta


def load_model(directory: str | os.PathLike[str], device: str = "cpu") -> BrainAgeModel:
    """Rebuild a saved model and load its weights; returned in eval mode.

    Raises:
        BrainAgeError: missing/invalid files, unknown model name, or weights that do not
            match the architecture described in ``model.json``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from brainage.models.registry import create_model

    meta = read_model_config(directory)
    model = create_model(meta["name"], **meta["kwargs"])
    path = Path(directory) / WEIGHTS
    if not path.is_file():
        raise NotFoundError(f"{path}: not found. Fix: save the model again with save_model.")
    try:
        state = load_file(str(path), device=device)
    except (SafetensorError, OSError) as exc:
        raise InputError(f"{path}: not a readable safetensors file ({exc}).") from exc
    missing, unexpected = _key_diff(model.state_dict().keys(), state.keys())
    if missing or unexpected:
        raise InputError(
            f"{path}: weights do not match model {meta['name']!r} with {meta['kwargs']}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}."
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise InputError(f"{path}: weights do not fit the architecture ({exc}).") from exc
    return model.to(device).eval()


def _key_diff(expected: Any, found: Any) -> tuple[list[str], list[str]]:
    exp, got = set(expected), set(found)
    return sorted(exp - got), sorted(got - exp)
