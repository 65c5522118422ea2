"""What every fuzz test asserts about a reader given hostile input (issue 24, item 3).

A reader either reads the input or refuses it with a named brainage error
(:class:`~brainage.errors.BrainAgeError`) whose message names the file and a fix; any
other exception (KeyError, IndexError, struct.error, UnicodeDecodeError, ...) is a raw
traceback and fails the test. Memory stays bounded: the reader may not allocate beyond
:data:`MEMORY_LIMIT` for inputs of a few KiB.

Hypothesis runs derandomized (the examples are the same on every run), without an
example database and without deadlines, with few examples: the fuzz tests must stay
fast in ``make test``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

from brainage.errors import BrainAgeError

#: Every fuzz test's hypothesis settings (derandomized: the seeds are in the repository).
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
#: Peak Python/numpy allocation allowed while reading one small hostile file.
MEMORY_LIMIT = 64 * 2**20


def read_or_refuse(read: Callable[[], Any], names: str | None = None) -> Any:
    """Run `read`; return its result, or the BrainAgeError it raised.

    Args:
        read: The reader, called without arguments.
        names: Text the error message must hold (the file's name), if any.

    Fails the test when `read` raises anything but a BrainAgeError, when its message
    lacks `names` or a fix, or when reading allocated more than :data:`MEMORY_LIMIT`.
    """
    tracemalloc.start()
    try:
        out: Any = read()
    except BrainAgeError as exc:
        text = str(exc)
        assert names is None or names in text, f"the error does not name {names!r}: {text}"
        assert "fix" in text.lower(), f"the error gives no fix: {text}"
        out = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < MEMORY_LIMIT, f"reading a small file allocated {peak:,} bytes"
    return out
