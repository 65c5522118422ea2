"""The preprocessing spec: canonical JSON, stable hash, save/load, refusing to mix specs."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace

import pytest

from brainage.errors import BrainAgeError
from brainage.preprocessing.spec import (
    DEFAULT_PARAMS,
    SPEC_FILE,
    PreprocessingSpec,
    canonical_json,
    check_spec_compatible,
)


def test_default_spec_steps_and_versions():
    spec = PreprocessingSpec.create()
    assert spec.grid.name == "tsan" and spec.normalisation == "zscore"
    assert spec.steps == ["conform", "n4", "register:affine", "skullstrip:refined",
                          "resample:linear", "normalise:zscore", "segment:gm-wm-csf"]
    assert {"antspyx", "nilearn", "nibabel", "numpy", "brainage"} <= set(spec.libraries)
    deep = PreprocessingSpec.create(skullstrip="deepbet", n4=False, nonlinear=True)
    assert {"deepbet", "torch"} <= set(deep.libraries)
    assert deep.steps[:3] == ["conform", "register:syn", "skullstrip:deepbet"]


def test_hash_is_stable_and_independent_of_key_order():
    a = PreprocessingSpec.create("gan")
    b = PreprocessingSpec.create("gan")
    assert a.hash == b.hash and len(a.hash) == 64 and a.short_hash == a.hash[:12]
    shuffled = replace(a, params=dict(reversed(list(a.params.items()))))
    assert shuffled.hash == a.hash
    assert canonical_json({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


def test_any_change_changes_the_hash():
    base = PreprocessingSpec.create()
    others = [
        PreprocessingSpec.create("gan"), PreprocessingSpec.create(n4=False),
        PreprocessingSpec.create(skullstrip="deepbet"), PreprocessingSpec.create(nonlinear=True),
        PreprocessingSpec.create(normalisation="minmax"),
        PreprocessingSpec.create(mask_threshold=0.4),
        replace(base, libraries={**base.libraries, "antspyx": "0.0.1"}),
    ]
    hashes = {base.hash} | {o.hash for o in others}
    assert len(hashes) == len(others) + 1
    assert others[-1].recipe_hash == base.recipe_hash


def test_save_load_round_trip(tmp_path):
    spec = PreprocessingSpec.create("openbhb-vbm", n4=False)
    path = spec.save(tmp_path)
    assert path.name == SPEC_FILE
    stored = json.loads(path.read_text())
    assert stored["hash"] == spec.hash and stored["spec"]["grid"]["shape"] == [121, 145, 121]
    loaded = PreprocessingSpec.load(tmp_path)
    assert loaded == spec and loaded.hash == spec.hash


def test_edited_spec_file_is_refused(tmp_path):
    path = PreprocessingSpec.create().save(tmp_path / "spec.json")
    data = json.loads(path.read_text())
    data["spec"]["params"]["mask_threshold"] = 0.3
    path.write_text(json.dumps(data))
    with pytest.raises(BrainAgeError, match="was edited"):
        PreprocessingSpec.load(path)


def test_missing_and_broken_spec_files(tmp_path):
    with pytest.raises(BrainAgeError, match="not found"):
        PreprocessingSpec.load(tmp_path)
    (tmp_path / SPEC_FILE).write_text("{not json")
    with pytest.raises(BrainAgeError, match="not valid JSON"):
        PreprocessingSpec.load(tmp_path)
    (tmp_path / SPEC_FILE).write_text('{"spec": {"grid": 1}}')
    with pytest.raises(BrainAgeError, match="not a brainage preprocessing spec"):
        PreprocessingSpec.load(tmp_path)


def test_bad_options_are_refused():
    with pytest.raises(BrainAgeError, match="skullstrip 'bet'"):
        PreprocessingSpec.create(skullstrip="bet")
    with pytest.raises(BrainAgeError, match="normalisation"):
        PreprocessingSpec.create(normalisation="robust")
    with pytest.raises(BrainAgeError, match="unknown preprocessing parameter"):
        PreprocessingSpec.create(mask_treshold=0.5)
    assert "mask_threshold" in DEFAULT_PARAMS


def test_compatible_specs_pass():
    check_spec_compatible(PreprocessingSpec.create(), PreprocessingSpec.create())


def test_different_recipes_are_refused_with_every_difference():
    a = PreprocessingSpec.create()
    b = PreprocessingSpec.create("gan", skullstrip="deepbet")
    with pytest.raises(BrainAgeError) as info:
        check_spec_compatible(a, b, what=("model", "input"))
    msg = str(info.value)
    assert "grid.shape: [91, 109, 91] vs [96, 96, 96]" in msg
    assert "skullstrip: 'refined' vs 'deepbet'" in msg
    assert a.short_hash in msg and b.short_hash in msg and "--spec" in msg
    with pytest.raises(BrainAgeError) as info:  # the names a prepare folder gives the sides
        check_spec_compatible(a, b, what=("existing outputs", "this run"))
    assert f"Fix: prepare the scans again with the spec of the existing outputs " \
           f"({a.short_hash})" in str(info.value)  # was "prepare the this run again ...'s"


def test_library_drift_is_refused_unless_allowed():
    a = PreprocessingSpec.create()
    b = replace(a, libraries={**a.libraries, "antspyx": "9.9.9"})
    with pytest.raises(BrainAgeError, match="other library versions.*antspyx"):
        check_spec_compatible(a, b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_spec_compatible(a, b, allow_library_drift=True)
    assert any("9.9.9" in str(w.message) for w in caught)
