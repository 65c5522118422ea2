"""Registry behaviour: listing, lookup errors with suggestions, kwargs checks, config."""

from __future__ import annotations

import pytest

from brainage.errors import BrainAgeError
from brainage.models import create_model, list_models, model_info


def test_list_models_sorted_and_pattern() -> None:
    names = list_models()
    assert names == sorted(names)
    assert list_models("*_3d") == ["densenet121_3d", "resnet18_3d"]
    assert list_models("nothing*") == []


def test_unknown_name_lists_valid_names_and_suggests_closest() -> None:
    with pytest.raises(BrainAgeError) as err:
        create_model("scaledens")
    msg = str(err.value)
    assert "Did you mean 'scaledense'?" in msg
    assert all(name in msg for name in list_models())


def test_unknown_kwarg_is_rejected_with_suggestion() -> None:
    with pytest.raises(BrainAgeError, match=r"'widht' \(did you mean 'width'\?\)"):
        create_model("scaledense", widht=4)


def test_model_info_describes_and_defaults() -> None:
    info = model_info("sfcn")
    assert "Peng" in info.description and "Peng" in info.paper
    assert info.default_kwargs["channels"] == [32, 64, 128, 256, 256, 64]
    assert model_info("resnet18_3d").default_kwargs["layers"] == [2, 2, 2, 2]
    shared = {"in_channels", "num_outputs", "norm", "act", "dropout"}
    for name in list_models():
        assert shared <= set(model_info(name).default_kwargs), name


def test_config_holds_resolved_json_ready_kwargs() -> None:
    model = create_model("resnet18_3d", width=4, layers=(1, 1, 1, 1))
    assert model.config["name"] == "resnet18_3d"
    assert model.config["kwargs"]["layers"] == [1, 1, 1, 1]
    assert model.config["kwargs"]["dropout"] == 0.0


def test_bad_values_are_explained() -> None:
    with pytest.raises(BrainAgeError, match="unknown norm 'layer'"):
        create_model("resnet18_3d", width=4, norm="layer")
    with pytest.raises(BrainAgeError, match="dropout"):
        create_model("alexnet3d", dropout=1.5)
    with pytest.raises(BrainAgeError, match="num_outputs must be 1"):
        create_model("sfcn", num_outputs=2)
    with pytest.raises(BrainAgeError, match="plain numbers"):
        create_model("sfcn", age_range=object())
