"""Fixtures of the training tests (helpers in synthetic_runs.py)."""

from __future__ import annotations

import pytest
from synthetic_runs import one_torch_thread

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)
