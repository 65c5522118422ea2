"""Fixtures of the predictor tests; the synthetic helpers live in tests/tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tasks"))


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny 3D convs run ~10x faster single-threaded on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
