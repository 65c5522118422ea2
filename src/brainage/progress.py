"""Progress of a many-scan command: a bar, log lines or a callback, and one summary line.

``progress`` arguments, in the CLI and the Python API alike:

- ``True``: a tqdm bar on stderr (scans done/total, s/scan, ETA) when stderr is a terminal,
  else one log line every few scans (:func:`log_every`); then the summary line.
- ``"lines"``: the log lines and the summary, never a bar (``--no-progress``).
- a callable: called as ``fn(done, total)`` after each scan; nothing is printed.
- ``False``/``None`` (the Python API's default): quiet.

The summary line (:meth:`Progress.close`): ``predict: 58 done, 0 skipped, 2 failed in
6m41s (6.9 s/scan)``; s/scan is the wall time over the scans worked on (skipped ones are
not), so with several jobs it is the throughput, not one scan's time.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import IO, Any

ProgressArg = bool | str | Callable[[int, int], None] | None

#: At most this many scans between two log lines.
MAX_EVERY = 10


def log_every(total: int) -> int:
    """Scans between log lines: about 5 % of `total`, at least 1, at most :data:`MAX_EVERY`."""
    return max(1, min(MAX_EVERY, math.ceil(0.05 * total)))


def duration(seconds: float) -> str:
    """``75.3`` -> ``1m15s``; ``3.2`` -> ``3.2s``; ``3725`` -> ``1h02m05s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """Counts scans of one command as they finish and reports them (see the module doc).

    Args:
        total: Scans to work on (not counting `skipped`).
        desc: The command, e.g. ``predict``.
        progress: See the module doc.
        skipped: Scans skipped before the run (finished earlier).
        stream: Where the bar and lines go (default stderr).
    """

    def __init__(self, total: int, desc: str, progress: ProgressArg = False, *,
                 skipped: int = 0, stream: IO[str] | None = None) -> None:
        self.total, self.desc, self.skipped = int(total), desc, int(skipped)
        self.done = self.failed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.callback = progress if callable(progress) else None
        self.mode = "off" if not progress else "callback" if self.callback else (
            "bar" if progress is True and _is_tty(self.stream) else "lines")
        self.every = log_every(self.total)
        self.start = time.perf_counter()
        self.bar: Any = None
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=desc, unit="scan", file=self.stream,
                            dynamic_ncols=True)

    @property
    def finished(self) -> int:
        """Scans worked on so far (done or failed)."""
        return self.done + self.failed

    def update(self, status: str = "done") -> None:
        """One scan finished: ``done``, ``failed`` or ``skipped`` (found finished meanwhile)."""
        if status == "skipped":
            self.skipped += 1
            self.total -= 1
        elif status == "failed":
            self.failed += 1
        else:
            self.done += 1
        if self.callback is not None:
            self.callback(self.finished, self.total)
        elif self.bar is not None:
            if status == "skipped":
                self.bar.total = self.total
                self.bar.refresh()
            else:
                self.bar.update()
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.mode == "lines" and status != "skipped" and (
                self.finished % self.every == 0 or self.finished == self.total):
            self._line(self.line())

    def line(self) -> str:
        """``predict: 20/60 scans, 6.8 s/scan, ETA 4m32s, 1 failed``."""
        elapsed = time.perf_counter() - self.start
        rate = elapsed / self.finished if self.finished else math.nan
        left = max(0, self.total - self.finished)
        failed = f", {self.failed} failed" if self.failed else ""
        return (f"{self.desc}: {self.finished}/{self.total} scans, {rate:.1f} s/scan, "
                f"ETA {duration(rate * left) if left else '0s'}{failed}")

    def summary(self) -> str:
        """The summary line: done, skipped, failed, wall time, s/scan."""
        wall = time.perf_counter() - self.start
        per = f"{wall / self.finished:.1f} s/scan" if self.finished else "no scan worked on"
        return (f"{self.desc}: {self.done} done, {self.skipped} skipped, {self.failed} failed "
                f"in {duration(wall)} ({per})")

    def close(self, print_summary: bool = True) -> str:
        """End the bar and print the summary line (unless quiet, a callback, or not
        `print_summary`, e.g. when interrupted); return it."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        text = self.summary()
        if print_summary and self.mode in ("bar", "lines"):
            self._line(text)
        return text

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)


def _is_tty(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False
