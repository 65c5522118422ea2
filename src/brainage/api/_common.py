"""What the public API's modules share: the path type their signatures take and the
conversions to what the layers below take (:mod:`brainage.api`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainage.preprocessing.prepared import PreparedCohort

PathLike = str | os.PathLike[str]


def _fs(path: PathLike) -> str:
    """`path` as the ``str`` the layers below take (they accept ``str | Path``)."""
    return os.fspath(path)


def _fs_or_none(path: PathLike | None) -> str | None:
    return None if path is None else os.fspath(path)


def _prepared_arg(prepared: PathLike | PreparedCohort | None) -> str | PreparedCohort | None:
    """A prepared folder as ``str``; an opened cohort (or None) unchanged."""
    if prepared is None or isinstance(prepared, str | os.PathLike):
        return _fs_or_none(prepared)
    return prepared


def _with_overrides(config: Any, sets: Sequence[str]) -> Any:
    """`config` (any config dataclass) with ``key=value`` overrides applied (checked as at
    load time)."""
    if not sets:
        return config
    from brainage.config import from_dict, merge, parse_overrides, to_dict

    return from_dict(type(config), merge(to_dict(config), parse_overrides(sets)), "config")
