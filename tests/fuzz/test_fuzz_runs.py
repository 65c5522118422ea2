"""Generated damage to a run folder: JSON fields replaced or removed, files cut or garbled.

The bundled tissue-map run (a finished run folder with five classical members, bias
correction and interval calibration) is copied and one of its files damaged; loading it
for prediction (``Predictor.from_run``, which reads every file of the run) works or
refuses with a named error and a fix. Nothing is unpickled whatever the damage.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
from fuzz_helpers import FUZZ, read_or_refuse
from hypothesis import given
from hypothesis import strategies as st

from brainage.errors import InputError
from brainage.inference.predictor import Predictor
from brainage.runs import read_run_info

BUNDLED = Path(__file__).resolve().parents[2] / "src" / "brainage" / "bundled" / "ixi_tissue_ridge"
FILES = sorted(str(p.relative_to(BUNDLED)) for p in BUNDLED.rglob("*")
               if p.is_file() and p.name != "golden.json")
HOSTILE = [None, "", -1, 0, 1e308, float("nan"), [], {}, [1, 2], "x", "../x", True, 2**70,
           "\x00", [None], {"a": 1}]


def _places(obj: object, at: tuple = ()) -> list[tuple]:
    """Every key path of a JSON document (lists: their first three items)."""
    out = [at]
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _places(value, (*at, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            out += _places(value, (*at, i))
    return out


def _edit(obj: object, at: tuple, value: object, delete: bool) -> object:
    if not at:
        return value
    node = obj
    for key in at[:-1]:
        node = node[key]  # type: ignore[index]
    if delete and isinstance(node, dict):
        del node[at[-1]]
    else:
        node[at[-1]] = value  # type: ignore[index]
    return obj


def _load(run: Path) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes about missing optional files
        return Predictor.from_run(run)


@pytest.fixture(scope="module")
def control():
    """The undamaged copy loads: damage is what the fuzz tests test."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(BUNDLED, run)
        assert len(_load(run).stage1) == 5  # type: ignore[attr-defined]


@FUZZ
@given(name=st.sampled_from([f for f in FILES if f.endswith(".json")]), data=st.data())
def test_a_run_with_an_edited_json_field_loads_or_is_refused_by_name(control, name, data):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(BUNDLED, run)
        doc = json.loads((run / name).read_text())
        at = data.draw(st.sampled_from(_places(doc)))
        doc = _edit(doc, at, data.draw(st.sampled_from(HOSTILE)), data.draw(st.booleans()))
        (run / name).write_text(json.dumps(doc))
        read_or_refuse(lambda: _load(run), names=str(run))


@FUZZ
@given(name=st.sampled_from(FILES), cut=st.none() | st.integers(0, 10**7),
       flips=st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)), max_size=4))
def test_a_run_with_a_cut_or_garbled_file_loads_or_is_refused_by_name(control, name, cut, flips):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(BUNDLED, run)
        blob = bytearray((run / name).read_bytes())
        if cut is not None:
            blob = blob[: cut % (len(blob) + 1)]
        for at, byte in flips:
            if blob:
                blob[at % len(blob)] = byte
        (run / name).write_bytes(bytes(blob))
        read_or_refuse(lambda: _load(run), names=str(run))


@pytest.mark.parametrize("name, edit", [
    ("fold-1/model.json", lambda d: d.pop("spacing")),
    ("fold-2/model.json", lambda d: d.update(features="x")),
    ("bias_correction.json", lambda d: d["params"].update(confounds=True)),
    ("interval_calibration.json", lambda d: d.pop("group_edges")),
])
def test_what_the_fuzz_tests_found_in_run_files(tmp_path, name, edit):
    """Found by the fuzz tests: KeyError/TypeError from the loaders of members, the bias
    correction and the interval calibration. Now named: by the loader itself, or else by
    run_files.member_files (which names the member folder or file)."""
    run = tmp_path / "run"
    shutil.copytree(BUNDLED, run)
    doc = json.loads((run / name).read_text())
    edit(doc)
    (run / name).write_text(json.dumps(doc))
    where = name.removesuffix("/model.json")
    with pytest.raises(InputError, match=rf"/run/{re.escape(where)}: .*Fix: restore the"):
        _load(run)


@pytest.mark.parametrize("name", ["fold-3/weights.safetensors", "fold-4/model.json"])
def test_a_cut_member_file_is_refused_by_name(tmp_path, name):
    """Found by the fuzz tests: SafetensorError, and UnicodeDecodeError from model.json."""
    run = tmp_path / "run"
    shutil.copytree(BUNDLED, run)
    blob = (run / name).read_bytes()
    (run / name).write_bytes(blob[: len(blob) // 2] + b"\xff")
    with pytest.raises(InputError, match=name.split("/")[0] + r": the model files"):
        _load(run)


@pytest.mark.parametrize("version", ["abc", None, [1], 1.5, True])
def test_a_run_json_version_that_is_no_number_is_refused(tmp_path, version):
    run = tmp_path / "run"
    shutil.copytree(BUNDLED, run)
    doc = json.loads((run / "run.json").read_text())
    doc["version"] = version
    (run / "run.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"run\.json: version is .*expected a whole number"):
        read_run_info(run)
