"""The options every many-scan command shares: ``--jobs`` and ``--progress/--no-progress``.

Light on purpose (``brainage --help`` imports it): see :mod:`brainage.parallel` for the
workers and :mod:`brainage.progress` for what is printed.
"""

from __future__ import annotations

import typer

JOBS_HELP = ("Scans processed in parallel, in worker processes (default: every core). Each "
             "worker runs ITK single-threaded, so results are bit-identical to --jobs 1.")


def jobs_option() -> object:
    """``--jobs/-j N`` (None: every core this process may use)."""
    return typer.Option(None, "--jobs", "-j", min=1, help=JOBS_HELP)


def progress_option() -> object:
    """``--progress/--no-progress``."""
    return typer.Option(
        True, "--progress/--no-progress", help="A progress bar on stderr (scans done/total, "
        "s/scan, ETA) when it is a terminal; --no-progress, or stderr not a terminal: one "
        "log line every few scans instead. A summary line ends every run.")


def progress_arg(progress: bool) -> bool | str:
    """The ``progress`` argument of the API for the flag: a bar, or log lines only."""
    return True if progress else "lines"
