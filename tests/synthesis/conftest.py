"""Fixtures of the synthesis tests; the synthetic helpers live in tests/training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import one_torch_thread  # noqa: E402

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)
