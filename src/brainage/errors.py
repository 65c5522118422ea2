"""User-facing errors.

Every problem names where it is (file, row, column), the value found, what was expected
and how to fix it. Validation collects *all* problems before raising, so a user fixes a
table in one pass instead of one error per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class BrainAgeError(Exception):
    """An error caused by the user's input or environment, shown without a traceback.

    Raise one of the subclasses, which also subclass the matching builtin so Python callers
    can catch them by kind (``except ValueError``) as well as all at once
    (``except BrainAgeError``). Programming errors (a broken invariant inside brainage) are
    never BrainAgeErrors: they keep their traceback.
    """


class InputError(BrainAgeError, ValueError):
    """A value given by the user (file content, option, table cell) is not valid."""


class NotFoundError(BrainAgeError, FileNotFoundError):
    """A file or folder the user named does not exist (or lacks a file it must hold)."""


class WrongTypeError(BrainAgeError, TypeError):
    """A value given by the user has the wrong type (e.g. a config option)."""


class UnknownNameError(InputError):
    """A name (model, loss, optimiser, preset, ...) that no registry holds."""


@dataclass(frozen=True)
class Problem:
    """One problem found in user input.

    Attributes:
        where: File (or directory) the problem is in.
        expected: What a valid value looks like.
        fix: How to fix it.
        value: The offending value, if there is one.
        row: 1-based data row number in a table (header excluded), if any.
        column: Column name in a table, if any.
        participant: The participant the row (or file) describes, if known.
        session: Its session, if any.
    """

    where: str
    expected: str
    fix: str
    value: object = None
    row: int | None = None
    column: str | None = None
    participant: str | None = None
    session: str | None = None

    def __str__(self) -> str:
        loc = str(self.where)
        if self.row is not None:
            loc += f", row {self.row}"
        who = " ".join(str(v) for v in (self.participant, self.session) if v)
        if who:
            loc += f" ({who})"
        if self.column is not None:
            loc += f", column '{self.column}'"
        got = "" if self.value is None else f"got {self.value!r}; "
        return f"{loc}: {got}expected {self.expected}. Fix: {self.fix}"


class ValidationError(InputError):
    """Several problems found at once in user input."""

    #: At most this many problems are printed; all are kept in ``problems``.
    max_shown = 50

    def __init__(self, problems: Iterable[Problem], what: str = "input") -> None:
        self.problems = list(problems)
        lines = [f"{len(self.problems)} problem(s) in {what}:"]
        lines += [f"  - {p}" for p in self.problems[: self.max_shown]]
        if len(self.problems) > self.max_shown:
            lines.append(f"  ... and {len(self.problems) - self.max_shown} more of the same kinds")
        super().__init__("\n".join(lines))


def require(condition: bool, problem: Problem) -> None:
    """Raise a one-problem ValidationError unless `condition` holds."""
    if not condition:
        raise ValidationError([problem])


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) as one space: a
    message part that stays on its line."""
    return " ".join(str(text).split())
