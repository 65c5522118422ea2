"""Participant labels as BIDS Apps take them, shared by every command with a participant filter.

``--participant-label 01 02 sub-03`` (space-separated after one flag), repeated flags and
commas (``--participant-label 01,02``) all mean the same selection; labels work with or
without ``sub-``. Click takes one value per flag, so :func:`expand_label_args` rewrites the
command line first (``brainage.cli.main`` does it before dispatch): the tokens after the flag,
up to the next option or BIDS-App level, become one flag each. Put positional arguments
before the labels (as BIDS Apps do), or end the labels with ``--``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import typer

from brainage.errors import InputError  # light: `brainage --help` imports this module

#: Both spellings: ours and the BIDS Apps specification's.
LABEL_FLAGS: tuple[str, ...] = ("--participant-label", "--participant_label")
#: Tokens that end a run of labels besides options: the BIDS App analysis levels.
LEVELS: tuple[str, ...] = ("participant", "group")
_LABEL = re.compile(r"^[A-Za-z0-9._-]+$")


def label_option(help: str = "Only these participants: labels with or without 'sub-', "
                 "space-separated after one flag (--participant-label 01 02), repeated, "
                 "or comma-separated.") -> object:
    """The ``--participant-label`` Typer option every command shares."""
    return typer.Option(None, *LABEL_FLAGS, help=help)


def expand_label_args(args: Sequence[str]) -> list[str]:
    """``[--participant-label, a, b]`` -> ``[--participant-label, a, --participant-label, b]``.

    A run of labels ends at a token starting with ``-`` (the next option, or ``--``) or at
    a BIDS-App level (``participant``/``group``). ``--participant-label=a`` is left as is.
    """
    out: list[str] = []
    flag: str | None = None
    for token in args:
        if token == "--":
            flag = None
        elif flag is not None and not token.startswith("-") and token not in LEVELS:
            out += [flag, token] if out[-1] != flag else [token]
            continue
        else:
            flag = token if token in LABEL_FLAGS else None
        out.append(token)
    return out


def participant_labels(values: Sequence[str] | None) -> list[str] | None:
    """Labels without ``sub-``, in the order given, each once; None when none were given.

    Args:
        values: What the option collected: labels, ``sub-`` ids, comma- or space-separated.

    Raises:
        InputError: a label that is empty once ``sub-`` is removed, or has characters no
            participant label has (``/``, spaces inside quotes are separators).
    """
    if not values:
        return None
    out: list[str] = []
    for item in values:
        for part in re.split(r"[,\s]+", str(item)):
            if not part:
                continue
            label = part.removeprefix("sub-")
            if not label or not _LABEL.match(label):
                raise InputError(
                    f"--participant-label: got {part!r}; expected a participant label such "
                    "as 01 or sub-01 (letters, digits, '.', '_' or '-'). Fix: list labels "
                    "after the flag, separated by spaces or commas, and put BIDS_DIR, "
                    "OUTPUT_DIR and the level before them.")
            if label not in out:
                out.append(label)
    return out or None
