"""The parameter-free input stage: intensity bins, pooling, and staged (cached) inputs."""

from __future__ import annotations

import pytest
import torch
from model_testing import example_covariates, input_shape

from brainage.errors import BrainAgeError
from brainage.models import create_model, list_models, model_info
from brainage.models.input_stage import InputStage


def test_bins_split_each_brain_voxel_linearly_and_skip_background() -> None:
    stage = InputStage(bins=3, bin_range=(-1.0, 1.0))  # centres -1, 0, 1
    x = torch.tensor([0.0, -1.0, 0.5, 1.0, 5.0, -7.0, -0.25]).view(1, 1, 7, 1, 1)
    w = stage(x)[0, :, :, 0, 0].T  # (voxels, bins)
    expected = torch.tensor([
        [0.0, 0.0, 0.0],    # background (exactly 0): no bin
        [1.0, 0.0, 0.0],    # on the first centre
        [0.0, 0.5, 0.5],    # halfway between centres 0 and 1
        [0.0, 0.0, 1.0],
        [0.0, 0.0, 1.0],    # above the range: last bin
        [1.0, 0.0, 0.0],    # below the range: first bin
        [0.25, 0.75, 0.0],
    ])
    torch.testing.assert_close(w, expected)


def test_pooled_bins_are_tissue_fractions() -> None:
    stage = InputStage(pool=2, bins=2, bin_range=(-1.0, 1.0))
    x = torch.zeros(1, 1, 2, 2, 2)
    x[0, 0, 0] = -1.0  # half the block "dark", half background
    x[0, 0, 1, 0] = 1.0  # a quarter "bright"
    out = stage(x)[0, :, 0, 0, 0]
    torch.testing.assert_close(out, torch.tensor([0.5, 0.25]))


def test_channels_multiply_with_bins() -> None:
    stage = InputStage(in_channels=2, pool=2, bins=4)
    assert stage.out_channels == 8
    assert stage(torch.randn(3, 2, 6, 8, 4)).shape == (3, 8, 3, 4, 2)
    assert InputStage().is_identity and not stage.is_identity


@pytest.mark.parametrize("bins, rng, match", [(1, (-3, 1), "input_bins must be 0"),
                                              (-2, (-3, 1), "input_bins must be 0"),
                                              (4, (1, 1), "input_range"),
                                              (4, (1.0,), "input_range must be \\(low, high\\)")])
def test_bad_settings_are_refused(bins, rng, match) -> None:
    with pytest.raises(BrainAgeError, match=match):
        InputStage(bins=bins, bin_range=rng)


@pytest.mark.parametrize("name", list_models())
def test_staged_inputs_give_the_same_output(name: str) -> None:
    model = create_model(name, **model_info(name).tiny, input_bins=4).eval()
    assert model.config["kwargs"]["input_bins"] == 4
    x = torch.randn(2, 1, *input_shape(model))
    cov = example_covariates(model, 2)
    with torch.no_grad():
        direct = model(x, **cov)
        staged = model.input_stage(x)
        assert staged.shape[1] == 4
        with model.staged_inputs():
            torch.testing.assert_close(model(staged, **cov), direct)
        with pytest.raises(ValueError, match="input must have shape"):
            model(staged, **cov)  # outside the block the model stages itself
