"""The run folder shipped with the installation, if any (``--init-from bundled``).

Every place that means "the model that comes with brainage" resolves it through
:func:`default_model_dir`, so adding a bundled model later changes this one function.
"""

from __future__ import annotations

from pathlib import Path

from brainage.errors import NotFoundError

#: The word that names the bundled model where a run folder is expected.
BUNDLED = "bundled"


def default_model_dir() -> Path | None:
    """The bundled run folder, or None when this installation ships none (as now)."""
    return None


def resolve_run(source: str | Path) -> Path:
    """A run folder from a path or the word ``bundled``.

    Raises:
        NotFoundError: ``bundled`` was asked for but this installation has no bundled model.
    """
    if str(source) != BUNDLED:
        return Path(source)
    found = default_model_dir()
    if found is None:
        raise NotFoundError("no bundled model in this installation; pass a run folder "
                            "(e.g. --init-from runs/source, a folder written by "
                            "`brainage train`).")
    return found
