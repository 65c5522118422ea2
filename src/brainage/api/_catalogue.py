"""What an installation holds, for the CLI's look-up commands: models, presets, resolved
configs and the self-test (:mod:`brainage.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from brainage.api._common import PathLike, _fs

if TYPE_CHECKING:
    from brainage.inference.selftest import SelftestResult
    from brainage.training.config import TrainConfig
    from brainage.training.gan_config import GanConfig


@dataclass(frozen=True)
class ModelSummary:
    """One registered network (:func:`list_models`)."""

    name: str
    kind: str
    parameters: int
    description: str


def list_models(pattern: str | None = None, kind: str = "age") -> list[ModelSummary]:
    """``brainage models``: the registered networks whose name matches the shell wildcard
    `pattern`, with parameter counts at their default settings.

    Args:
        pattern: e.g. ``"*3d"``; None: every one.
        kind: ``age`` (the networks :func:`train` accepts), ``generator``, ``critic``
            (TGB-GAN) or ``all``.

    Raises:
        InputError: an unknown kind.
    """
    import torch

    from brainage.errors import InputError
    from brainage.models import count_parameters, create_model, model_info
    from brainage.models import list_models as names
    from brainage.models.registry import KINDS

    if kind != "all" and kind not in KINDS:
        raise InputError(f"--kind {kind!r} is not a model kind. Fix: use one of "
                         f"{', '.join((*KINDS, 'all'))}.")
    out = []
    for name in names(pattern, kind=None if kind == "all" else kind):
        info = model_info(name)
        with torch.device("meta"):  # count without allocating the weights
            n_params = int(count_parameters(create_model(name)))
        out.append(ModelSummary(name, str(info.kind), n_params, str(info.description)))
    return out


def presets(kind: Literal["train", "gan"] = "train") -> dict[str, str]:
    """``brainage config list``: the shipped presets of `kind` (``train`` or ``gan``), name
    to description."""
    from brainage.training.presets import describe, list_presets

    return {name: describe(name, kind) for name in list_presets(kind)}


def show_config(name: PathLike, overrides: Sequence[str] = (), *, gan: bool = False
                ) -> TrainConfig | GanConfig:
    """``brainage config show``: a preset or YAML file fully resolved (defaults, inherited
    files, the file, then ``key=value`` `overrides`); `gan`: read a file as a GAN config
    (a GAN preset is recognised by its name)."""
    from brainage.training.config import load_train_config
    from brainage.training.gan_config import load_gan_config
    from brainage.training.presets import kind_of

    text = _fs(name)
    if gan or kind_of(text) == "gan":
        return load_gan_config(text, list(overrides))
    return load_train_config(text, list(overrides))


def selftest(model: PathLike | None = None) -> SelftestResult:
    """``brainage selftest``: predict generated scans with the bundled model (or `model`, a
    run folder with a ``golden.json``) and compare with the ages recorded when it was
    built (:func:`brainage.inference.selftest.run_selftest`; ``.passed``, ``.format()``)."""
    from brainage.inference.selftest import run_selftest

    return run_selftest(None if model is None else Path(model))
