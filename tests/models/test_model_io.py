"""save_model / load_model: safetensors + model.json only, clear errors on bad folders."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from brainage.errors import BrainAgeError
from brainage.models import create_model, load_model, save_model


def test_files_and_metadata(tmp_path) -> None:
    model = create_model("resnet18_3d", width=2, layers=[1, 1, 1, 1])
    save_model(model, tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["name"] == "resnet18_3d" and meta["kwargs"]["width"] == 2
    assert meta["num_parameters"] == sum(p.numel() for p in model.parameters())
    with safe_open(str(tmp_path / "weights.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["brainage_model"])["name"] == "resnet18_3d"
        names = set(f.keys())
    assert "stem.1.running_mean" in names  # buffers travel too
    assert not load_model(tmp_path).training


def test_model_without_config_is_refused(tmp_path) -> None:
    model = create_model("alexnet3d", channels=[2, 2, 2, 2, 2])
    model.config = {}
    with pytest.raises(BrainAgeError, match="create_model"):
        save_model(model, tmp_path)


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(BrainAgeError, match="model.json: not found"):
        load_model(tmp_path)
    save_model(create_model("resnet18_3d", width=2, layers=[1, 1, 1, 1]), tmp_path)
    meta = json.loads((tmp_path / "model.json").read_text())
    meta["kwargs"]["width"] = 4
    (tmp_path / "model.json").write_text(json.dumps(meta))
    with pytest.raises(BrainAgeError, match="weights do not"):
        load_model(tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(BrainAgeError, match="safetensors"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(BrainAgeError, match="not a brainage model"):
        load_model(tmp_path)


def test_save_leaves_other_files_alone(tmp_path) -> None:
    (tmp_path / "config.yaml").write_text("x: 1\n")
    save_model(create_model("sfcn", channels=[2, 2]), tmp_path)
    assert (tmp_path / "config.yaml").read_text() == "x: 1\n"
    torch.manual_seed(1)
    second = create_model("sfcn", channels=[2, 2])
    save_model(second, tmp_path)  # overwrite in place
    torch.testing.assert_close(load_model(tmp_path).classifier.weight, second.classifier.weight)
