"""Fixtures shared by several test folders."""

from __future__ import annotations

import numpy as np
import pytest

#: Unequal axes, so axis mix-ups fail.
ARRAY_SHAPE = (20, 24, 18)


@pytest.fixture()
def arrays(tmp_path):
    """Five cached (20, 24, 18) float16 arrays, filled with their index plus a ramp on z."""
    paths = []
    for i in range(5):
        path = tmp_path / f"s{i}.npy"
        np.save(path, np.full(ARRAY_SHAPE, i, np.float16)
                + np.arange(18, dtype=np.float16) / 100)
        paths.append(str(path))
    return paths
