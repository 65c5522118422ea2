"""The BIDS App: ``brainage BIDS_DIR OUTPUT_DIR participant|group``.

The participant level (:mod:`.participant`) prepares, predicts and explains each subject
independently (safe in parallel into one output folder); the group level (:mod:`.group`)
collates, evaluates and reports. Both are glue over the public API.
"""

from __future__ import annotations

from pathlib import Path

from brainage.errors import InputError


def default_model() -> Path | None:
    """The bundled model's run folder, used when no ``--model`` is given.

    None while brainage ships no model (a bundled model will be returned here).
    """
    return None


def resolve_model(model: str | Path | None) -> Path:
    """The run folder to use: `model`, else :func:`default_model`.

    Raises:
        InputError: no model given and none bundled.
    """
    if model is not None:
        return Path(model)
    bundled = default_model()
    if bundled is None:
        raise InputError("no model given, and brainage has no bundled model yet. Fix: pass "
                         "--model RUN, a run folder written by `brainage train`.")
    return bundled
