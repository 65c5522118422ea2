"""brainage.locks: one holder at a time, released when the holder dies (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from brainage.locks import LockedError, hold, holder, try_lock


def test_one_holder_at_a_time_and_release(tmp_path):
    path = tmp_path / "locks" / "sub-01.lock"
    first = try_lock(path)
    assert first is not None and try_lock(path) is None
    assert holder(path).startswith(f"pid {os.getpid()} on ")
    busy = pytest.raises(LockedError, match=f"scan sub-01 is in use by pid {os.getpid()}")
    with busy, hold(path, what="scan sub-01"):
        pass
    first.release()
    assert not path.exists()
    with hold(path) as again:
        assert again is not None


def test_the_lock_of_a_killed_process_does_not_block(tmp_path):
    path = tmp_path / "x.lock"
    code = ("import sys, time; from brainage.locks import try_lock; "
            "lock = try_lock(sys.argv[1]); print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"held"
        assert try_lock(path) is None  # held by the live child
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        child.kill()
    assert path.exists()  # the file is left behind ...
    deadline = time.time() + 5
    lock = try_lock(path)
    while lock is None and time.time() < deadline:  # ... but its lock died with the child
        time.sleep(0.05)
        lock = try_lock(path)
    assert lock is not None
    lock.release()
