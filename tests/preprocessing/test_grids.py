"""Target grids: presets in MNI world coordinates, custom grids, BIDS res labels."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.errors import BrainAgeError
from brainage.preprocessing.grids import PRESETS, Grid, get_grid


def test_tsan_grid_is_the_fsl_mni152_2mm_grid():
    g = get_grid("tsan")
    assert g.shape == (91, 109, 91)
    expected = np.array([[-2, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    np.testing.assert_allclose(g.affine_array, expected)
    np.testing.assert_allclose(g.affine_array @ [45, 63, 36, 1], [0, 0, 0, 1])
    assert g.res_label == "2" and g.normalisation == "zscore"


@pytest.mark.parametrize(("name", "shape", "spacing", "tolerance"), [
    ("openbhb-vbm", (121, 145, 121), 1.5, 0.0),
    ("openbhb-quasiraw", (182, 218, 182), 1.0, 0.5),  # FSL 1 mm grid: half a voxel off
    ("gan", (96, 96, 96), 2.0, 0.0),
])
def test_presets_cover_the_brain_centre(name, shape, spacing, tolerance):
    g = get_grid(name)
    assert g.shape == shape and g.spacing == (spacing,) * 3
    centre = g.affine_array @ np.append((np.array(shape) - 1) / 2, 1)
    np.testing.assert_allclose(centre[:3], [0, -18, 18], atol=tolerance + 1e-9)


def test_openbhb_grids_share_the_fsl_origin():
    for name in ("openbhb-vbm", "openbhb-quasiraw"):
        np.testing.assert_allclose(get_grid(name).affine_array[:3, 3], [90, -126, -72])
    assert get_grid("openbhb-vbm").res_label == "1p5"
    assert get_grid("gan").normalisation == "minmax"


def test_custom_grids():
    g = get_grid("1.75mm:20x24x18")
    assert g.shape == (20, 24, 18) and g.spacing == (1.75, 1.75, 1.75)
    assert get_grid("2mm").shape == PRESETS["tsan"].shape
    np.testing.assert_allclose(get_grid("2mm").affine_array, PRESETS["tsan"].affine_array)


@pytest.mark.parametrize("bad", ["tsn", "0.1mm", "2mm:10x10", "big"])
def test_bad_grid_names_say_what_is_valid(bad):
    with pytest.raises(BrainAgeError, match="grid"):
        get_grid(bad)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(BrainAgeError, match="did you mean 'tsan'"):
        get_grid("tsam")


def test_round_trip_through_dict():
    g = get_grid("gan")
    assert Grid.from_dict(g.to_dict()) == g
