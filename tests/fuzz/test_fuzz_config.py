"""Generated hostile training configs: YAML files, damaged presets and ``key=value`` flags.

Loading one either gives a TrainConfig or raises a named error with a fix, in bounded
time and memory: YAML aliases that expand into billions of values and collections
nested thousands deep are refused, and messages never print a huge value in full.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from fuzz_helpers import FUZZ, read_or_refuse
from hypothesis import given
from hypothesis import strategies as st

from brainage.errors import BrainAgeError, InputError
from brainage.training.config import TrainConfig, load_train_config
from brainage.training.presets import resolve_config

KEYS = ["model", "name", "kwargs", "epochs", "optim", "lr", "loss", "inherits", "split", "classical",
        "stack", "members", "augment", "scheduler", "seed", "devices", "precision", "repeats",
        "batch_size", "sigma", "synthetic", "contrastive", "kind", "folds", "1", "<<"]
SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.text(max_size=10)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(KEYS))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | SCALARS, inner, max_size=4),
                      max_leaves=12)
#: Raw YAML that PyYAML's safe loader refuses or that means something unexpected.
RAW = ["!!python/object:os.system", "*undefined", "&a [1]", "!!binary aGVsbG8=", "!!set {a}",
       "2001-01-01", "0x10", ".nan", "'../../x'", "{a: 1}", "[", "]", ": :", "\t", "quickstart"]


def _load(path: Path | None, overrides: list[str] = ()) -> object:
    return load_train_config(path, list(overrides))


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS) | SCALARS, VALUES, max_size=5))
def test_a_hostile_config_mapping_is_loaded_or_refused_by_name(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hostile.yaml"
        path.write_text(yaml.safe_dump(data))
        out = read_or_refuse(lambda: _load(path), names="hostile.yaml")
        assert isinstance(out, TrainConfig | BrainAgeError)


@FUZZ
@given(cut=st.integers(0, 10**6), flips=st.lists(st.tuples(st.integers(0, 10**6),
                                                          st.integers(0, 255)), max_size=4),
       raw=st.lists(st.sampled_from(RAW), max_size=2))
def test_a_damaged_preset_is_loaded_or_refused_by_name(cut, flips, raw):
    text = resolve_config("quickstart").read_bytes()
    blob = bytearray(text[: cut % (len(text) + 1)])
    for at, byte in flips:
        if blob:
            blob[at % len(blob)] = byte
    blob += b"".join(f"\nk{i}: {r}".encode() for i, r in enumerate(raw))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "damaged.yaml"
        path.write_bytes(bytes(blob))
        read_or_refuse(lambda: _load(path), names="damaged.yaml")


@FUZZ
@given(st.lists(st.tuples(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3),
                          st.sampled_from(RAW) | st.text(max_size=8)), max_size=3))
def test_hostile_overrides_are_applied_or_refused_by_name(items):
    overrides = [".".join(keys) + "=" + value for keys, value in items]
    read_or_refuse(lambda: _load(None, overrides))


@pytest.mark.parametrize("blob, match", [
    (b"\xff\xfeepochs: 1\n", r"not UTF-8 text.*Fix: save the file as UTF-8"),
    (b"1: 2\n~: 3\nepochs: 2\n", r"unknown option\(s\) \[1, None\]"),
    (b"epochs: " + b"[" * 600 + b"]" * 600, r"nested too deeply.*Fix:"),
])
def test_what_the_fuzz_tests_found_in_config_files(tmp_path, blob, match):
    """Found by the fuzz tests: a non-UTF-8 file raised UnicodeDecodeError, keys that are
    not strings a TypeError (sorting 1 with 'epochs'), deep nesting a RecursionError."""
    path = tmp_path / "c.yaml"
    path.write_bytes(blob)
    with pytest.raises(BrainAgeError, match=match):
        _load(path)


@pytest.mark.parametrize("overrides, match", [
    (["model.kwargs=!!python/object:os.system"], r"not a plain YAML value.*Fix: quote it"),
    (["epochs=*a"], r"not a plain YAML value"),
    (["optim=1", "optim.lr=2"], r"optim was set to a value by an earlier override"),
])
def test_what_the_fuzz_tests_found_in_overrides(overrides, match):
    with pytest.raises(InputError, match=match):
        _load(None, overrides)


def test_yaml_aliases_that_expand_to_billions_are_refused_quickly(tmp_path):
    """9**9 values from ten lines: refused while counting, not expanded (nor printed)."""
    lines = ["    a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    lines += [f"    a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("model:\n  kwargs:\n" + "\n".join(lines) + "\nepochs: *a8\n")
    out = read_or_refuse(lambda: _load(path), names="bomb.yaml")
    assert isinstance(out, InputError) and "more than 100,000 values" in str(out)
    assert len(str(out)) < 500
