"""The typed API (issue 23): no ``**options`` left, every parameter annotated, and the
functions the CLI's cohort/split/models/config/selftest commands now call."""

from __future__ import annotations

import inspect

import pytest

import brainage
from brainage import api
from brainage.errors import InputError

PUBLIC = [f for name, f in vars(api).items() if inspect.isfunction(f)
          and not name.startswith("_") and f.__module__.startswith(f"{api.__name__}.")]


def test_every_public_function_is_exported_typed_and_takes_no_var_keywords():
    assert len(PUBLIC) >= 20
    for fn in PUBLIC:
        params = inspect.signature(fn).parameters.values()
        assert all(p.kind is not p.VAR_KEYWORD for p in params), fn.__name__
        assert all(p.annotation is not p.empty for p in params), fn.__name__
        assert getattr(brainage, fn.__name__) is fn, fn.__name__


def test_presets_and_a_resolved_config():
    assert "quickstart" in brainage.presets() and "tgbgan" in brainage.presets("gan")
    assert "tgbgan" not in brainage.presets()
    config = brainage.show_config("quickstart", ["epochs=3"])
    assert config.epochs == 3 and type(config).__name__ == "TrainConfig"
    assert type(brainage.show_config("tgbgan")).__name__ == "GanConfig"


def test_list_models_by_kind():
    age = brainage.list_models(kind="age")
    assert age and all(m.kind == "age" and m.parameters > 0 for m in age)
    every = {m.kind for m in brainage.list_models(kind="all")}
    assert {"age", "generator", "critic"} <= every
    with pytest.raises(InputError, match="'nope' is not a model kind"):
        brainage.list_models(kind="nope")
