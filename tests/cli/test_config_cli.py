"""``brainage config list`` and ``brainage config show``: the presets shipped in the package."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from brainage.cli.main import app


def test_config_list_names_every_preset_with_its_description():
    result = CliRunner().invoke(app, ["config", "list"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines() if line.strip()]
    assert {"quickstart", "tsan", "tsan_stage2", "tsan_cpu", "tsan_cpu_stage2", "sfcn"} <= set(names)
    assert "TSAN stage 1 as published" in result.output


def test_config_show_prints_the_resolved_config_with_inheritance_and_overrides():
    result = CliRunner().invoke(app, ["config", "show", "tsan_cpu_stage2", "--set", "epochs=7"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["model"]["name"] == "tsan_stage2"  # from the file
    assert shown["loss"]["name"] == "tsan" and shown["optim"]["amsgrad"] is True  # inherited
    assert shown["epochs"] == 7  # --set


def test_config_show_of_an_unknown_preset_suggests_one():
    result = CliRunner().invoke(app, ["config", "show", "quickstrat"])
    assert result.exit_code != 0
    assert "Did you mean 'quickstart'" in str(result.exception)
