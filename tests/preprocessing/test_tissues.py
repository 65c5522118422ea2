"""Tissue maps (GM/WM/CSF) and the intensity-refined brain mask on the grid."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.preprocessing.antsio import template_mask_on_grid
from brainage.preprocessing.grids import get_grid
from brainage.preprocessing.skullstrip import dice, refined_mask
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.preprocessing.spec_params import DEFAULT_PARAMS
from brainage.preprocessing.tissues import modulated, segment, template_priors, tissue_qc

GRID = get_grid("8mm:20x24x18")


def labelled_brain(seed: int = 0):
    """A brain on the test grid: WM core, GM rim, CSF in the template's CSF prior, + noise."""
    priors = template_priors(GRID)
    mask = template_mask_on_grid(GRID)
    labels = np.argmax(priors, axis=0)  # 0 GM, 1 WM, 2 CSF
    means = np.array([0.6, 1.0, 0.25])
    rng = np.random.default_rng(seed)
    data = (means[labels] + rng.normal(0, 0.05, labels.shape)) * mask
    return data.astype(np.float32), mask, labels, priors


def test_priors_are_probabilities_on_the_grid():
    priors = template_priors(GRID)
    assert priors.shape == (3, *GRID.shape) and not priors.flags.writeable
    assert priors.min() >= 0 and np.allclose(priors.sum(axis=0), 1, atol=1e-5)


def test_segmentation_recovers_known_tissues():
    data, mask, labels, priors = labelled_brain()
    probs, fit = segment(data, mask, priors, dict(DEFAULT_PARAMS))
    assert probs.shape == (3, *GRID.shape) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=0)[mask], 1, atol=1e-5)
    assert probs[:, ~mask].max() == 0
    found = np.argmax(probs, axis=0)
    for k in range(3):
        assert dice((found == k) & mask, (labels == k) & mask) > 0.9
    assert fit["mean"][2] < fit["mean"][0] < fit["mean"][1]
    record, flags = tissue_qc(probs, fit, voxel_ml=0.512, affine_det=1.2)
    assert record["gm_ml"] == pytest.approx(probs[0].sum() * 0.512 * 1.2, rel=1e-3)
    assert "tissue_contrast_unusual" not in flags


def test_inverted_contrast_is_flagged():
    data, mask, _labels, priors = labelled_brain()
    probs, fit = segment((1.2 - data) * mask, mask, priors, dict(DEFAULT_PARAMS))
    _record, flags = tissue_qc(probs, fit, 0.512, 1.0)
    assert "tissue_contrast_unusual" in flags


def test_modulation_multiplies_by_the_jacobian():
    probs = np.full((3, 2, 2, 2), 0.5, np.float32)
    np.testing.assert_allclose(modulated(probs, 1.5), 0.75)
    logjac = np.log(np.full((2, 2, 2), 2.0, np.float32))
    np.testing.assert_allclose(modulated(probs, 1.5, logjac), 1.5)


def test_refined_mask_grows_into_bright_voxels_only():
    from scipy import ndimage as ndi

    template = template_mask_on_grid(GRID)
    ring = ndi.binary_dilation(template) & ~template
    rng = np.random.default_rng(0)  # inside: CSF (0.2) to WM (1.0) intensities
    data = np.where(template, rng.uniform(0.2, 1.0, template.shape), 0.0).astype(np.float32)
    data[ring] = 0.9  # cortex the template mask missed: bright
    params = {**DEFAULT_PARAMS, "mask_grow_mm": 8.0}
    grown = refined_mask(data, template, GRID.spacing, params)
    assert (grown == (template | ring)).all()
    data[ring] = 0.02  # CSF / bone: dark, stays out
    assert (refined_mask(data, template, GRID.spacing, params) == template).all()
    assert (refined_mask(data, template, GRID.spacing, {**params, "mask_grow_mm": 0}) ==
            template).all()


def test_tissues_enter_the_spec_and_its_hash_only_when_on():
    plain, with_maps = PreprocessingSpec.create(tissues=False), PreprocessingSpec.create()
    assert "tissues" not in plain.recipe() and plain.tissue_channels == ()
    assert with_maps.recipe()["tissues"] is True and with_maps.hash != plain.hash
    assert with_maps.steps[-1] == "segment:gm-wm-csf"
    assert with_maps.tissue_channels == ("GM", "WM", "CSF")
    assert PreprocessingSpec.create(nonlinear=True).tissue_channels[-1] == "logjac"
    again = PreprocessingSpec.from_dict(with_maps.to_dict())
    assert again.hash == with_maps.hash
    old = plain.to_dict()  # a spec written before tissue maps existed loads unchanged
    assert PreprocessingSpec.from_dict(old).hash == plain.hash
