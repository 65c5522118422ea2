"""Model registry (timm style): ``@register_model`` on small builder functions.

A builder is a function returning a network; its first docstring line is the one-line
description shown by ``brainage models``. Every entry has a ``kind``: ``"age"`` networks
implement :class:`~brainage.models.base.BrainAgeModel` and are what ``brainage train`` and
``brainage models`` use; ``"generator"`` and ``"critic"`` networks (the TGB-GAN autoencoder
and its WGAN-GP critic) are plain modules built, saved and loaded the same way but listed
only when asked for (``list_models(kind="generator")``, ``kind=None`` for all). The registry knows
the model class, so unknown keyword arguments are rejected before anything is built, and the
fully resolved keyword arguments (class defaults + variant presets + caller overrides) are
stored on the model as ``model.config`` so a run folder can rebuild it.

Example:
    >>> from brainage.models import create_model, list_models
    >>> model = create_model("sfcn", channels=(4, 8, 8, 4))  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brainage.errors import InputError
from brainage.registry import Registry

if TYPE_CHECKING:
    from brainage.models.base import BrainAgeModel

Builder = Callable[..., "BrainAgeModel"]

#: Kinds of registered network: age regressors, image generators, GAN critics.
KINDS: tuple[str, ...] = ("age", "generator", "critic")


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one model name.

    Attributes:
        name: Registered name.
        description: One line, from the builder's docstring.
        model_cls: Class the builder returns; its ``__init__`` defines the allowed kwargs.
        builder: The registered builder function.
        presets: Keyword arguments the variant fixes by default (callers may override).
        tiny: Keyword arguments for a small CPU variant (tests, smoke runs).
        paper: Citation of the architecture's source.
        kind: ``"age"`` (a BrainAgeModel), ``"generator"`` or ``"critic"`` (see KINDS).
    """

    name: str
    description: str
    model_cls: type
    builder: Builder
    presets: dict[str, Any] = field(default_factory=dict)
    tiny: dict[str, Any] = field(default_factory=dict)
    paper: str = ""
    kind: str = "age"

    @property
    def default_kwargs(self) -> dict[str, Any]:
        """Every constructor argument with its default for this variant (JSON-ready)."""
        sig = inspect.signature(self.model_cls.__init__)
        defaults = {
            k: p.default for k, p in sig.parameters.items()
            if k != "self" and p.default is not inspect.Parameter.empty
        }
        return _jsonable({**defaults, **self.presets})


MODELS: Registry[ModelInfo] = Registry("model", "`brainage models` lists them")


def register_model(
    model_cls: type,
    *,
    presets: dict[str, Any] | None = None,
    tiny: dict[str, Any] | None = None,
    paper: str = "",
    kind: str = "age",
) -> Callable[[Builder], Builder]:
    """Register a builder function under its own name.

    Args:
        model_cls: The class the builder returns (its signature validates kwargs).
        presets: Default kwargs fixed by this variant (e.g. ResNet-18's layer counts).
        tiny: Kwargs of a small variant for CPU tests.
        paper: Citation shown in ``model_info``.
        kind: One of KINDS; only ``"age"`` models must implement BrainAgeModel.

    Returns:
        A decorator that records the builder and returns it unchanged.
    """

    _check_kind(kind)

    def decorator(fn: Builder) -> Builder:
        name = fn.__name__
        doc = (fn.__doc__ or "").strip().splitlines()
        MODELS.add(name, ModelInfo(
            name=name, description=doc[0] if doc else "", model_cls=model_cls, builder=fn,
            presets=dict(presets or {}), tiny=dict(tiny or {}), paper=paper, kind=kind,
        ))
        return fn

    return decorator


def list_models(pattern: str | None = None, kind: str | None = "age") -> list[str]:
    """Registered names, sorted.

    Args:
        pattern: Shell wildcard such as ``"*3d"`` (None = every name).
        kind: Only networks of this kind (``"age"`` by default, the models ``brainage
            train`` accepts); ``"generator"``, ``"critic"``, or None for every kind.
    """
    if kind is not None:
        _check_kind(kind)
    return [n for n in MODELS.names(pattern) if kind is None or MODELS.get(n).kind == kind]


def check_kind(name: str, kind: str) -> ModelInfo:
    """The entry for ``name``, which must be a network of ``kind``.

    Raises:
        BrainAgeError: unknown name, or a network of another kind (e.g. a critic where an
            age model is needed); the message lists the names of the right kind.
    """
    _check_kind(kind)
    info = model_info(name)
    if info.kind != kind:
        raise InputError(
            f"model {name!r} is a {info.kind} network, but a {kind} network is needed here. "
            f"Fix: use one of {', '.join(list_models(kind=kind)) or '(none registered)'}."
        )
    return info


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InputError(f"unknown model kind {kind!r}. Fix: use one of {', '.join(KINDS)}.")


def model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``.

    Raises:
        UnknownNameError: unknown name; the message lists valid names and the closest one.
    """
    return MODELS.get(name)


def create_model(name: str, **kwargs: Any) -> BrainAgeModel:
    """Build a registered network; ``model.config`` records its name and resolved kwargs.

    Works for every kind; a ``"generator"`` or ``"critic"`` entry returns a plain
    ``nn.Module`` (not a BrainAgeModel), see :func:`check_kind`.

    Args:
        name: Registered name (see :func:`list_models`).
        **kwargs: Constructor overrides, e.g. ``width=4``.

    Raises:
        UnknownNameError, InputError: unknown name or unknown keyword argument.
    """
    info = model_info(name)
    allowed = info.default_kwargs
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        hints = [
            f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
                k, list(allowed), n=1)) else "")
            for k in unknown
        ]
        raise InputError(
            f"model {name!r} got unknown argument(s) {', '.join(hints)}. "
            f"Fix: use only {', '.join(sorted(allowed))}."
        )
    resolved = {**allowed, **_jsonable(kwargs)}
    model = info.builder(**resolved)
    model.config = {"name": name, "kwargs": resolved}
    return model


def _jsonable(obj: dict[str, Any]) -> dict[str, Any]:
    """Round-trip through JSON so tuples become lists, exactly as a saved config reads back."""
    try:
        return json.loads(json.dumps(obj))
    except TypeError as exc:
        raise InputError(
            f"model arguments must be plain numbers, strings, booleans or lists ({exc}). "
            "Fix: pass names such as norm='batch' instead of objects."
        ) from exc
