"""Named components behind one small registry class (models, losses, optimisers, schedules).

Each kind of component has exactly one :class:`Registry`; a config names a component, and an
unknown name fails the same way everywhere: the valid names, the closest one, and the fix
(MONAI's ``look_up_option``).

Example:
    >>> from brainage.registry import Registry
    >>> colours = Registry("colour", "see `brainage colours`")
    >>> colours.add("red", 1)
    >>> colours.get("red")
    1
    >>> from brainage.errors import UnknownNameError
    >>> try:
    ...     colours.get("rde")
    ... except UnknownNameError as exc:
    ...     print(str(exc)[:50])
    unknown colour 'rde'. Did you mean 'red'? Valid na
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from brainage.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, for one kind of component.

    Args:
        kind: What the entries are, for messages (``"loss"``, ``"optimiser"``).
        where: Where a user finds the valid names, for the fix in messages.
    """

    def __init__(self, kind: str, where: str = "") -> None:
        self.kind = kind
        self.where = where
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Register `entry` under `name` (a name is registered once)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: register the decorated object under `name` (default: its ``__name__``)."""

        def decorator(obj: T) -> T:
            self.add(name or obj.__name__, obj)  # type: ignore[attr-defined]
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The entry for `name`.

        Raises:
            UnknownNameError: unknown name; the message lists the valid names and the
                closest one.
        """
        if name in self._entries:
            return self._entries[name]
        close = difflib.get_close_matches(str(name), list(self._entries), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f" ({self.where})" if self.where else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Valid names: {', '.join(self.names())}. "
            f"Fix: use one of these names{where}.")

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted; `pattern` is a shell wildcard such as ``"*3d"``."""
        names = sorted(self._entries)
        return names if pattern is None else [n for n in names if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
