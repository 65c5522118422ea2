"""``brainage models`` and ``brainage import-sfcn`` through Typer's test runner."""

from __future__ import annotations

import json

import torch
import typer
from typer.testing import CliRunner

from brainage.cli import models as models_cli
from brainage.errors import BrainAgeError

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    models_cli.register(app)
    return app


def test_models_lists_names_counts_and_descriptions() -> None:
    result = runner.invoke(_app(), ["models"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert {"scaledense", "tsan_stage2", "sfcn", "resnet18_3d", "densenet121_3d",
            "alexnet3d"} <= set(lines)
    assert "102.38 M" in lines["scaledense"] and "TSAN" in lines["scaledense"]
    assert "Peng" in lines["sfcn"]


def test_models_pattern() -> None:
    result = runner.invoke(_app(), ["models", "*_3d"])
    assert [line.split()[0] for line in result.output.splitlines()] == [
        "densenet121_3d", "resnet18_3d"]
    assert runner.invoke(_app(), ["models", "zzz*"]).exit_code == 1


def _names(args: list[str]) -> list[str]:
    result = runner.invoke(_app(), ["models", *args])
    assert result.exit_code == 0, result.output
    return [line.split()[0] for line in result.output.splitlines()]


def test_models_kind_lists_generators_and_critics_apart_from_age_models() -> None:
    from brainage.models import list_models

    age = _names([])
    assert _names(["--kind", "age"]) == age and "tgbgan_generator" not in age
    assert _names(["--kind", "generator"]) == ["tgbgan_generator"]
    assert _names(["--kind", "critic"]) == ["tgbgan_critic"]
    every = runner.invoke(_app(), ["models", "--kind", "all"]).output.splitlines()
    kinds = {line.split()[0]: line.split()[1] for line in every}
    assert sorted(kinds) == list_models(kind=None) == sorted([*age, "tgbgan_critic",
                                                               "tgbgan_generator"])
    assert kinds["tgbgan_critic"] == "critic" and kinds["sfcn"] == "age"
    critic_line = next(line for line in every if line.startswith("tgbgan_critic "))
    assert "patch critic" in critic_line and " M " in critic_line


def test_models_kind_with_a_pattern_and_an_unknown_kind() -> None:
    assert _names(["tgbgan*", "--kind", "all"]) == ["tgbgan_critic", "tgbgan_generator"]
    result = runner.invoke(_app(), ["models", "sfcn", "--kind", "critic"])
    assert result.exit_code == 1 and "no critic model matches 'sfcn'" in result.output
    result = runner.invoke(_app(), ["models", "--kind", "gan"])
    assert isinstance(result.exception, BrainAgeError)
    assert "'gan' is not a model kind" in str(result.exception)
    assert "age, generator, critic, all" in str(result.exception)


def _published_state(channels: list[int], n_bins: int) -> dict[str, torch.Tensor]:
    """Random tensors under the published SFCN key names (DataParallel prefix)."""
    state, c_in = {}, 1
    for i, c in enumerate(channels):
        k = 1 if i == len(channels) - 1 else 3
        pre = f"module.feature_extractor.conv_{i}"
        state[f"{pre}.0.weight"] = torch.randn(c, c_in, k, k, k)
        state[f"{pre}.0.bias"] = torch.randn(c)
        for name, value in (("weight", torch.ones(c)), ("bias", torch.zeros(c)),
                            ("running_mean", torch.zeros(c)), ("running_var", torch.ones(c))):
            state[f"{pre}.1.{name}"] = value
        state[f"{pre}.1.num_batches_tracked"] = torch.tensor(0)
        c_in = c
    state[f"module.classifier.conv_{len(channels)}.weight"] = torch.randn(n_bins, c_in, 1, 1, 1)
    state[f"module.classifier.conv_{len(channels)}.bias"] = torch.randn(n_bins)
    return state


def test_import_sfcn(tmp_path) -> None:
    path = tmp_path / "sfcn.p"
    torch.save(_published_state([2, 3, 2], 20), path)
    out = tmp_path / "model"
    result = runner.invoke(_app(), ["import-sfcn", str(path), str(out), "--age-range", "0", "40",
                                    "--bin-width", "2"])
    assert result.exit_code == 0, result.output
    assert "20 bins" in result.output
    meta = json.loads((out / "model.json").read_text())
    assert meta["kwargs"]["channels"] == [2, 3, 2] and meta["kwargs"]["bin_width"] == 2


def test_import_sfcn_bad_bins_raise_user_error(tmp_path) -> None:
    path = tmp_path / "sfcn.p"
    torch.save(_published_state([2, 2], 40), path)
    result = runner.invoke(_app(), ["import-sfcn", str(path), str(tmp_path / "m"),
                                    "--age-range", "0", "100", "--bin-width", "2"])
    assert isinstance(result.exception, BrainAgeError)  # shown without traceback by main.run
    assert "--age-range 42 82" in str(result.exception)
