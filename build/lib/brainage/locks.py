"""Advisory locks that die with their process, so a killed run never blocks the next one.

A lock is a small file locked with ``flock``: the kernel releases it when the holding
process exits, however it exits (``kill -9``, out of memory, a node reboot for NFS after
its lease expires), so there is no stale lock to clean up by hand. The file records who
holds it (pid, host, start time) for the message a second process shows. On NFSv4 Linux
emulates ``flock`` with POSIX locks, which work across nodes; on a file system without
locking, :func:`try_lock` warns once and proceeds unlocked (the old behaviour).

Used by ``prepare`` (one lock per scan, so two processes never prepare the same scan); a
run folder lock for training can use the same helper::

    with hold(run / ".lock", what=f"training run {run}"):
        ...
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from brainage.errors import BrainAgeError

_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
_warned = False


class LockedError(BrainAgeError):
    """Another live process holds the lock."""


class Lock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) frees it."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self._fd = path, fd

    def release(self) -> None:
        """Remove the file and unlock (in that order, so no one locks a removed file)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)  # closing the last descriptor drops the flock
        self._fd = None

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def holder(path: str | os.PathLike[str]) -> str:
    """Who holds the lock at `path`, as the file records it (``pid 12 on node3 since ...``)."""
    try:
        info = json.loads(Path(path).read_text())
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["since"])))
        return f"pid {info['pid']} on {info['host']} since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def try_lock(path: str | os.PathLike[str]) -> Lock | None:
    """Take the lock at `path` without waiting; None when a live process holds it."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno in _UNSUPPORTED:
                _warn_unsupported(p, exc)
                return Lock(p, None)
            raise
        try:  # the holder may have removed the file between our open and our flock
            same = os.fstat(fd).st_ino == os.stat(p).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "since": time.time()}).encode())
    return Lock(p, fd)


@contextlib.contextmanager
def hold(path: str | os.PathLike[str], what: str = "this") -> Iterator[Lock]:
    """Hold the lock at `path` for the block.

    Raises:
        LockedError: a live process holds it (the message names the process).
    """
    lock = try_lock(path)
    if lock is None:
        raise LockedError(
            f"{what} is in use by {holder(path)} (lock {path}). Fix: wait for it to finish; "
            "a lock of a process that has ended is released by the system, so a rerun "
            "after a crash or kill is never blocked.")
    with lock:
        yield lock


def _warn_unsupported(path: Path, exc: OSError) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"{path.parent}: the file system does not support locks ({exc}); "
                      "concurrent runs on the same scans will each do the work.", stacklevel=3)
