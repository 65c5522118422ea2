"""Import published SFCN weights (a PyTorch state dict) into the registry's ``sfcn`` model.

The published checkpoint (Peng et al., UK Biobank) is a ``DataParallel`` state dict:
``module.feature_extractor.conv_{i}.0.*`` (Conv3d), ``module.feature_extractor.conv_{i}.1.*``
(BatchNorm3d) and ``module.classifier.conv_{n}.*`` (1x1x1 Conv3d to the age bins). It is read
with ``torch.load(weights_only=True)`` so no arbitrary object is unpickled; keys are mapped
explicitly, every shape is checked, and the result is written as safetensors + model.json.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from brainage.errors import InputError, NotFoundError

_FEATURE = re.compile(r"^feature_extractor\.conv_(\d+)\.([01])\.(\w+)$")
_CLASSIFIER = re.compile(r"^classifier\.conv_(\d+)\.(weight|bias)$")
_SUB = {"0": "conv", "1": "norm"}


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a plain tensor state dict safely (``weights_only=True``), stripping ``module.``.

    Accepts a bare state dict or a dict with a ``state_dict`` entry.
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: file not found. Fix: check the path to the .p/.pt file.")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of many kinds: refuse, never fall back
        raise InputError(
            f"{p}: not a plain PyTorch state dict that can be read safely ({exc}). "
            "Fix: re-save it with torch.save(model.state_dict(), path)."
        ) from exc
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise InputError(f"{p}: expected a mapping of names to tensors (a state dict).")
    return {_strip_module(str(k)): v for k, v in obj.items()}


def _strip_module(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key


def map_sfcn_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename published SFCN keys to the registry model's names.

    ``feature_extractor.conv_i.0.weight`` -> ``features.i.conv.weight``,
    ``feature_extractor.conv_i.1.running_mean`` -> ``features.i.norm.running_mean``,
    ``classifier.conv_n.weight`` (K, F, 1, 1, 1) -> ``classifier.weight`` (K, F).

    Raises:
        BrainAgeError: keys that belong to no SFCN layer (all listed at once).
    """
    out: dict[str, Any] = {}
    unknown = []
    for key, value in state.items():
        if m := _FEATURE.match(key):
            out[f"features.{m[1]}.{_SUB[m[2]]}.{m[3]}"] = value
        elif m := _CLASSIFIER.match(key):
            out[f"classifier.{m[2]}"] = value.reshape(value.shape[0], -1) if m[2] == "weight" \
                else value
        else:
            unknown.append(key)
    if unknown:
        raise InputError(
            f"not an SFCN state dict: unexpected key(s) {unknown[:8]}. Expected keys like "
            "'module.feature_extractor.conv_0.0.weight' and 'module.classifier.conv_6.weight'."
        )
    return out


def _infer_channels(mapped: Mapping[str, Any]) -> list[int]:
    convs = sorted(
        (int(k.split(".")[1]), v) for k, v in mapped.items()
        if k.startswith("features.") and k.endswith(".conv.weight")
    )
    if not convs or [i for i, _ in convs] != list(range(len(convs))):
        raise InputError("SFCN state dict: conv layers are missing or not numbered 0..n-1.")
    return [int(v.shape[0]) for _, v in convs]


def import_sfcn(state_dict_path: str | os.PathLike[str], out_dir: str | os.PathLike[str],
                age_range: Sequence[float] = (42.0, 82.0), bin_width: float = 1.0) -> Any:
    """Convert a published SFCN state dict into a brainage model folder.

    Args:
        state_dict_path: The ``.p``/``.pt`` file (read with ``weights_only=True``).
        out_dir: Folder to write ``weights.safetensors`` + ``model.json`` into.
        age_range: Bins the weights were trained with (UK Biobank release: 42-82).
        bin_width: Bin width in years (1 in the release).

    Returns:
        The loaded :class:`~brainage.models.sfcn.SFCN`, in eval mode.

    Raises:
        BrainAgeError: unsafe or malformed file, or bins/shapes that do not match.
    """
    from brainage.models.io import save_model
    from brainage.models.registry import create_model

    mapped = map_sfcn_keys(read_state_dict(state_dict_path))
    channels = _infer_channels(mapped)
    in_channels = int(mapped["features.0.conv.weight"].shape[1])
    model = create_model("sfcn", in_channels=in_channels, channels=channels,
                         age_range=list(age_range), bin_width=bin_width)
    n_bins = mapped.get("classifier.weight")
    if n_bins is not None and n_bins.shape[0] != model.age_bins.num_bins:
        raise InputError(
            f"the weights predict {n_bins.shape[0]} age bins but age_range {tuple(age_range)} "
            f"with bin width {bin_width} gives {model.age_bins.num_bins}. Fix: pass the bins the "
            "model was trained with (the UK Biobank release: --age-range 42 82 --bin-width 1)."
        )
    expected = model.state_dict()
    for key, value in expected.items():  # checkpoints saved by old PyTorch lack these
        if key.endswith("num_batches_tracked") and key not in mapped:
            mapped[key] = value.clone()
    _check_shapes(expected, mapped)
    model.load_state_dict(mapped, strict=True)
    save_model(model, out_dir)
    return model.eval()


def _check_shapes(expected: Mapping[str, Any], found: Mapping[str, Any]) -> None:
    problems = [f"missing {k}" for k in expected if k not in found]
    problems += [f"unexpected {k}" for k in found if k not in expected]
    problems += [
        f"{k}: expected shape {tuple(v.shape)}, got {tuple(found[k].shape)}"
        for k, v in expected.items() if k in found and tuple(found[k].shape) != tuple(v.shape)
    ]
    if problems:
        raise InputError("SFCN weights do not fit: " + "; ".join(problems[:10]))
