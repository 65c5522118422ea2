"""The coordinate chain: numpy/RAS <-> ANTs/LPS, transform files, resampling onto a grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainage.preprocessing import antsio, registration
from brainage.preprocessing.grids import get_grid

OBLIQUE = np.array([[0.0, -1.9, 0.3, 40.0], [2.0, 0.0, 0.0, -50.0],
                    [0.0, 0.2, 2.6, -30.0], [0, 0, 0, 1]])


def _ramp(shape, affine):
    """Intensity = a linear function of world position, f(x, y, z) = x + 2y + 3z + 500."""
    ijk = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    return (xyz @ [1.0, 2.0, 3.0] + 500).astype(np.float32), xyz


def test_ants_round_trip_keeps_the_affine():
    data = np.arange(24 * 28 * 20, dtype=np.float32).reshape(24, 28, 20)
    img = antsio.to_ants(data, OBLIQUE)
    np.testing.assert_allclose(antsio.affine_of(img), OBLIQUE, atol=1e-4)
    np.testing.assert_array_equal(img.numpy(), data)


def _well_inside(xyz: np.ndarray, shape, affine, margin: float = 1.0) -> np.ndarray:
    """Grid points whose native voxel coordinates are at least `margin` inside the volume."""
    ijk = (xyz - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    return np.all((ijk >= margin) & (ijk <= np.asarray(shape) - 1 - margin), axis=-1)


def _identity(tmp_path: Path) -> registration.Registration:
    init = registration.write_translation(np.zeros(3), tmp_path / "id.mat")
    return registration.Registration([init], [init], [True], None, np.eye(4))


def test_resampling_to_a_grid_preserves_world_positions(tmp_path):
    data, _ = _ramp((40, 44, 36), OBLIQUE)
    native = antsio.to_ants(data, OBLIQUE)
    grid = get_grid("6mm:12x14x10")
    out = registration.resample(native, _identity(tmp_path), grid)
    assert out.shape == (12, 14, 10)
    _, xyz = _ramp(grid.shape, grid.affine_array)
    expected = xyz @ [1.0, 2.0, 3.0] + 500
    inside = _well_inside(xyz, (40, 44, 36), OBLIQUE)
    assert inside.mean() > 0.3
    np.testing.assert_allclose(out[inside], expected[inside], atol=0.05)
    assert (out[~_well_inside(xyz, (40, 44, 36), OBLIQUE, margin=-1.0)] == 0).all()


def test_translation_file_moves_points_as_documented(tmp_path):
    shift = np.array([5.0, -3.0, 2.0])
    path = registration.write_translation(shift, tmp_path / "t.mat")
    m = registration.read_affine(path)
    np.testing.assert_allclose(m[:3, 3], shift, atol=1e-6)
    np.testing.assert_allclose(m[:3, :3], np.eye(3), atol=1e-9)
    # resampling through it: the grid point p reads the native image at p + shift
    data, _ = _ramp((40, 44, 36), OBLIQUE)
    reg = registration.Registration([path], [path], [True], None, m)
    grid = get_grid("6mm:12x14x10")
    out = registration.resample(antsio.to_ants(data, OBLIQUE), reg, grid)
    _, xyz = _ramp(grid.shape, grid.affine_array)
    expected = (xyz + shift) @ [1.0, 2.0, 3.0] + 500
    inside = _well_inside(xyz + shift, (40, 44, 36), OBLIQUE)
    np.testing.assert_allclose(out[inside], expected[inside], atol=0.05)


def test_implausible_matrices_are_flagged():
    assert registration.check_matrix(np.eye(4)) == []
    assert registration.check_matrix(np.diag([0.3, 1, 1, 1])) == ["registration_failure"]
    assert registration.check_matrix(np.diag([-1, 1, 1, 1])) == ["registration_failure"]


def test_initial_translation_aligns_head_top_with_brain_top():
    brain = np.zeros((20, 20, 20), bool)
    brain[5:15, 5:15, 4:14] = True
    head = np.zeros((30, 30, 30), bool)
    head[5:25, 5:25, 2:26] = True  # vertex at k = 25
    eye = np.eye(4)
    params = {"init_scalp_mm": 2.0, "init_slab_mm": 4.0}
    t = registration.initial_translation(head, eye, brain, eye, params)
    np.testing.assert_allclose(t, [5.0, 5.0, (25 - 2) - 13])
    np.testing.assert_allclose(
        registration.centroid_translation(brain, eye + np.diag([0, 0, 0, 0]), brain, eye), 0)
