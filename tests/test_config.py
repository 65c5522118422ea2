"""Typed config: defaults, YAML, overrides, and load-time errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from brainage.config import load_config, parse_overrides, save_config, to_dict
from brainage.errors import BrainAgeError


@dataclass
class Optim:
    lr: float = 1e-3
    name: Literal["adam", "sgd"] = "adam"


@dataclass
class Cfg:
    epochs: int = 3
    optim: Optim = field(default_factory=Optim)
    shape: tuple[int, ...] = (4, 5, 6)
    note: str | None = None


def test_defaults_yaml_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("epochs: 7\noptim:\n  name: sgd\n")
    cfg = load_config(Cfg, f, ["optim.lr=0.5", "shape=[1, 2, 3]"])
    assert cfg.epochs == 7 and cfg.optim == Optim(lr=0.5, name="sgd") and cfg.shape == (1, 2, 3)


def test_int_is_accepted_for_float_but_not_bool_for_int():
    assert load_config(Cfg, None, ["optim.lr=1"]).optim.lr == 1.0
    with pytest.raises(BrainAgeError, match=r"config\.epochs: got True"):
        load_config(Cfg, None, ["epochs=true"])


@pytest.mark.parametrize(
    ("override", "message"),
    [("epoch=3", r"unknown option\(s\) \['epoch'\]"), ("optim.name=rmsprop", "expected one of"),
     ("epochs=three", "expected int"), ("optim=3", "expected a mapping"), ("noequals", "KEY=VALUE")],
)
def test_errors_name_key_and_expectation(override, message):
    with pytest.raises(BrainAgeError, match=message):
        load_config(Cfg, None, [override])


def test_save_round_trip(tmp_path):
    cfg = load_config(Cfg, None, ["note=hi"])
    save_config(cfg, tmp_path / "r.yaml")
    assert load_config(Cfg, tmp_path / "r.yaml") == cfg
    assert to_dict(cfg)["optim"] == {"lr": 1e-3, "name": "adam"}


def test_parse_overrides_nests():
    assert parse_overrides(["a.b.c=1", "a.d=x"]) == {"a": {"b": {"c": 1}, "d": "x"}}


def test_missing_file(tmp_path):
    with pytest.raises(BrainAgeError, match="not found"):
        load_config(Cfg, tmp_path / "nope.yaml")


def test_a_named_section_replaces_its_kwargs_an_unnamed_one_merges():
    from brainage.config import merge

    base = {"model": {"name": "sfcn", "kwargs": {"channels": [8, 16]}}, "epochs": 3}
    assert merge(base, {"model": {"name": "scaledense"}})["model"] == {
        "name": "scaledense", "kwargs": {}}
    same = merge(base, {"model": {"name": "sfcn", "kwargs": {"dropout": 0.1}}})
    assert same["model"]["kwargs"] == {"dropout": 0.1}  # a saved config loads exactly
    tweak = merge(base, {"model": {"kwargs": {"dropout": 0.1}}})["model"]
    assert tweak == {"name": "sfcn", "kwargs": {"channels": [8, 16], "dropout": 0.1}}
