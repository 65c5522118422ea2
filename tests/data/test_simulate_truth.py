"""The simulator's aging ground truth: ventricle walls and thinning cortex change, nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.data.simulate import load_templates
from brainage.data.simulate.truth_maps import aged_brain, aging_change, on_grid
from brainage.preprocessing.grids import get_grid


@pytest.fixture(scope="module")
def change():
    return aging_change(25.0, 80.0, voxel_size=6.0)


def test_change_lies_at_the_ventricles_and_the_cortex(change):
    c, affine = change
    t = load_templates(6.0)
    assert c.shape == t.shape and np.allclose(affine, t.affine)
    inside = (t.ventricles > 0.2) | (t.thinning > 0) | (t.gm > 0.3)
    assert c.max() > 0.1
    assert c[inside].sum() / c.sum() > 0.9  # aging is anatomical and regional
    assert c[t.brain < 0.01].sum() < 1e-3 * c.sum()  # (almost) nothing outside the brain
    deep_wm = (t.wm > 0.95) & (t.ventricles == 0) & (t.thinning == 0)
    assert c[deep_wm].mean() < 0.2 * c[inside].mean()


def test_no_change_between_equal_ages():
    a, _ = aged_brain(40.0, 6.0)
    b, _ = aged_brain(40.0, 6.0)
    assert np.array_equal(a, b) and aging_change(40.0, 40.0, 6.0)[0].max() == 0


def test_on_grid_keeps_world_positions(change):
    c, affine = change
    grid = get_grid("6mm:32x32x32")
    m = on_grid(c, affine, grid.shape, grid.affine_array, smooth=False)
    i, j, k = np.unravel_index(int(np.argmax(m)), grid.shape)
    world = grid.affine_array @ [i, j, k, 1]
    src = np.round(np.linalg.inv(affine) @ world).astype(int)[:3]
    assert c[tuple(src)] > 0.5 * c.max()  # the peak is where the template's is
