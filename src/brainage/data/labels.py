"""Labels as output files name them: ``sub-<label>[_ses-<label>][_run-<n>]``, alphanumeric.

``prepare`` names every output after the scan's labels with everything but letters and
digits removed (BIDS labels are alphanumeric), so ``..`` names nothing and ``IXI_013`` and
``IXI-013`` name the same files. :func:`label_problems` finds both while a cohort is
validated, so ``cohort check`` refuses what ``prepare`` would. A label that looks like a
path (``../x``, ``/etc/x``, ``a\\b``) is refused too, rather than quietly becoming ``x``: it is
a mistake (a path in the id column) or an attempt to write outside the output folder.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from brainage.data.cohort import bids_label
from brainage.errors import Problem

_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
#: What makes a label look like a path: a separator, a NUL byte or a parent step.
_PATH_LIKE = re.compile(r"[/\\\x00]|\.\.")
#: (participant_id, session or None, run or None) of one scan.
Key = tuple[str, "str | None", "int | None"]


def clean_label(label: str) -> str:
    """The label with everything but ASCII letters and digits removed (``IXI_013`` -> ``IXI013``)."""
    return _NOT_ALNUM.sub("", label)


def scan_stem(participant_id: str, session: str | None = None, run: int | None = None) -> str:
    """``sub-<label>[_ses-<label>][_run-<n>]`` with alphanumeric labels (may be ``sub-``)."""
    parts = [f"sub-{clean_label(bids_label(participant_id))}"]
    if session:
        parts.append(f"ses-{clean_label(bids_label(session, 'ses-'))}")
    if run is not None:
        parts.append(f"run-{int(run)}")
    return "_".join(parts)


def label_problems(keys: Sequence[Key], where: Sequence[tuple[str, int | None]]
                   ) -> list[Problem]:
    """Labels with no letter or digit or that look like paths, and scans whose labels
    collide once cleaned.

    Args:
        keys: (participant_id, session, run) of each scan.
        where: (file, 1-based row or None) where each scan is described, for the messages.
    """
    problems: list[Problem] = []
    first: dict[str, tuple[Key, int]] = {}
    for pos, key in enumerate(keys):
        pid, session, _run = key
        file, row = where[pos]
        bad = _unusable(key, file, row)
        problems += bad
        if bad:
            continue
        stem = scan_stem(*key)
        if stem not in first:
            first[stem] = (key, pos)
        elif first[stem][0] != key:
            other, other_pos = first[stem]
            o_file, o_row = where[other_pos]
            at = o_file if o_row is None else f"{o_file}, row {o_row}"
            problems.append(Problem(
                file, expected=f"labels that stay distinct once made alphanumeric: "
                f"{_show(other)} ({at}) is also {stem}, the name of its output files",
                fix="rename one of the two participants (or sessions)",
                value=_show(key), row=row, column="participant_id", participant=pid,
                session=session))
    return problems


def _unusable(key: Key, file: str, row: int | None) -> list[Problem]:
    """Labels of one scan that clean to nothing (``..``) or look like paths (``../x``)."""
    pid, session, _run = key
    out = []
    for col, raw, prefix in (("participant_id", pid, "sub-"), ("session", session, "ses-")):
        what = "participant" if col == "participant_id" else "session"
        if raw and not clean_label(bids_label(raw, prefix)):
            expected = "a label with letters or digits (outputs are named after it)"
            fix = f"rename this {what} in the cohort table"
        elif raw and _PATH_LIKE.search(raw):
            expected = "a label, not a path (no '/', '\\' or '..': outputs are named after it)"
            fix = f"give the {what} a label of letters and digits in the cohort table"
        else:
            continue
        out.append(Problem(file, expected=expected, fix=fix, value=raw, row=row, column=col,
                           participant=pid, session=session))
    return out


def _show(key: Key) -> str:
    return " ".join(str(v) for v in key if v is not None)
