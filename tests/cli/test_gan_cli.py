"""``brainage gan train | synthesize | change-map`` and ``brainage train --synthetic``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import GAN_SHAPE, TINY_GAN, make_prepared, one_torch_thread  # noqa: E402

from brainage.cli.main import app  # noqa: E402

_one_thread = pytest.fixture(autouse=True)(one_torch_thread)
REGRESSOR = ["--set", "model.kwargs={channels: [4, 8, 4]}", "--set", "loss.name=mse",
             "--set", "epochs=1", "--set", "progress_bar=false", "--set", "accelerator=cpu",
             "--set", "repeats=1", "--set", "model.kwargs.input_pool=1",
             "--set", "tensorboard=false"]


def _sets(items: list[str]) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


@pytest.mark.slow
def test_gan_train_synthesize_change_map_and_augmented_training(tmp_path):
    make_prepared(tmp_path / "prep", n=16, shape=GAN_SHAPE)
    runner = CliRunner()
    gan, syn = tmp_path / "gan", tmp_path / "syn"
    result = runner.invoke(app, ["gan", "train", str(tmp_path / "prep"), str(gan), "--folds",
                                 "2", *_sets([*TINY_GAN, "epochs=1", "samples=0"])])
    assert result.exit_code == 0, result.output
    assert "fold-1: best epoch 0, held-out L1" in result.output
    result = runner.invoke(app, ["gan", "synthesize", str(gan), str(syn), "--cap", "5",
                                 "--bin-width", "10", "--reuse-pairs", "--no-change-map"])
    assert result.exit_code == 0, result.output
    assert "fold-0:" in result.output and "synthetic subjects from 8 real ones" in result.output
    assert not (syn / "change_map").exists()
    result = runner.invoke(app, ["gan", "change-map", str(gan), str(tmp_path / "cm")])
    assert result.exit_code == 0 and list((tmp_path / "cm").glob("*desc-agechange_map.png"))
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(tmp_path / "prep"), str(run), "--synthetic",
                                 str(syn), "--synthetic-ratio", "0.5", *REGRESSOR])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "model_card.json").read_text())
    assert card["synthetic"]["ratio"] == 0.5 and len(card["synthetic"]["folds"]) == 2
    result = runner.invoke(app, ["predict", str(gan), str(tmp_path / "prep"), "-o",
                                 str(tmp_path / "p.tsv")])
    assert result.exit_code != 0 and "TGB-GAN run" in str(result.exception)


def test_gan_presets_are_listed_apart_and_refused_by_train(tmp_path):
    runner = CliRunner()
    listed = runner.invoke(app, ["config", "list"]).output
    assert listed.index("GAN presets") < listed.index("tgbgan_cpu_no_task")
    shown = runner.invoke(app, ["config", "show", "tgbgan_no_task"]).output
    assert "beta: 0.0" in shown and "name: tgbgan_generator" in shown
    result = runner.invoke(app, ["train", str(tmp_path), str(tmp_path / "r"), "-c", "tgbgan"])
    assert result.exit_code != 0 and "brainage gan train -c tgbgan" in str(result.exception)
