"""Importing published SFCN weights: a reference module with the published names and layout
creates a DataParallel-style state dict; the registry model must reproduce its outputs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from brainage.errors import BrainAgeError
from brainage.models import load_model
from brainage.models.convert import import_sfcn

CALLED = []


class PublishedLayoutSFCN(nn.Module):
    """The published SFCN module names: feature_extractor.conv_i.{0: conv, 1: BN, 2/3: pool,
    relu}, classifier.{average_pool, dropout, conv_n}; output log_softmax (B, K, 1, 1, 1)."""

    def __init__(self, channels: list[int], n_bins: int, pool_shape: tuple[int, int, int]):
        super().__init__()
        self.feature_extractor = nn.Sequential()
        c_in = 1
        for i, c in enumerate(channels):
            last = i == len(channels) - 1
            layers = [nn.Conv3d(c_in, c, 1 if last else 3, padding=0 if last else 1),
                      nn.BatchNorm3d(c)]
            layers += [nn.ReLU()] if last else [nn.MaxPool3d(2, stride=2), nn.ReLU()]
            self.feature_extractor.add_module(f"conv_{i}", nn.Sequential(*layers))
            c_in = c
        self.classifier = nn.Sequential()
        self.classifier.add_module("average_pool", nn.AvgPool3d(pool_shape))
        self.classifier.add_module("dropout", nn.Dropout(0.5))
        self.classifier.add_module(f"conv_{len(channels)}", nn.Conv3d(c_in, n_bins, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.classifier(self.feature_extractor(x)), dim=1)


def _published(tmp_path, channels=(4, 8, 8, 4), n_bins=40):
    ref = PublishedLayoutSFCN(list(channels), n_bins, pool_shape=(3, 3, 2))  # 24x28x20 / 8
    ref.train()
    ref(torch.randn(4, 1, 24, 28, 20))  # non-trivial BN running statistics
    ref.eval()
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}  # DataParallel prefix
    path = tmp_path / "run_20190719_00_epoch_best_mae.p"
    torch.save(state, path)
    return ref, path


def test_imported_model_reproduces_published_outputs(tmp_path) -> None:
    ref, path = _published(tmp_path)
    assert "module.feature_extractor.conv_0.0.weight" in torch.load(path, weights_only=True)
    model = import_sfcn(path, tmp_path / "out", age_range=(42, 82), bin_width=1)
    x = torch.randn(2, 1, 24, 28, 20)
    with torch.no_grad():
        expected = ref(x).flatten(1)  # (B, 40, 1, 1, 1) -> (B, 40)
        torch.testing.assert_close(model.forward_logits(x), expected)
        loaded = load_model(tmp_path / "out")
        torch.testing.assert_close(loaded.forward_logits(x), expected)
        centres = torch.arange(40) + 42.5
        torch.testing.assert_close(loaded(x), (expected.exp() * centres).sum(1))
    meta = json.loads((tmp_path / "out" / "model.json").read_text())
    assert meta["name"] == "sfcn" and meta["kwargs"]["channels"] == [4, 8, 8, 4]
    assert meta["kwargs"]["age_range"] == [42, 82]


def test_wrong_bins_are_refused_with_the_fix(tmp_path) -> None:
    _, path = _published(tmp_path)
    with pytest.raises(BrainAgeError, match="40 age bins.*--age-range 42 82"):
        import_sfcn(path, tmp_path / "out", age_range=(0, 100), bin_width=2)
    assert not (tmp_path / "out").exists()


def _mark() -> str:
    CALLED.append(True)
    return "pwned"


class Evil:
    def __reduce__(self):
        return (_mark, ())


def test_pickled_objects_are_never_executed(tmp_path) -> None:
    path = tmp_path / "evil.p"
    torch.save({"module.feature_extractor.conv_0.0.weight": Evil()}, path)
    with pytest.raises(BrainAgeError, match="read safely"):
        import_sfcn(path, tmp_path / "out")
    assert CALLED == []


def test_foreign_state_dict_is_refused(tmp_path) -> None:
    path = tmp_path / "resnet.pt"
    torch.save({"module.conv1.weight": torch.zeros(2, 1, 3, 3, 3)}, path)
    with pytest.raises(BrainAgeError, match="not an SFCN state dict"):
        import_sfcn(path, tmp_path / "out")
    with pytest.raises(BrainAgeError, match="not found"):
        import_sfcn(tmp_path / "missing.p", tmp_path / "out")
