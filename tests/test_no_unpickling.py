"""Weights are never unpickled: a .pt/.ckpt with a pickle payload is refused unexecuted (issue 24).

The payload makes a folder when unpickled. A control test shows it really does (so the
other tests would fail if any path unpickled it); then every way a file can be given as a
model is tried, and the folder must not exist. A last test reads the source: every
``torch.load`` passes ``weights_only=True`` and nothing else that unpickles is used.
"""

from __future__ import annotations

import ast
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

from brainage.errors import BrainAgeError, InputError

SRC = Path(__file__).resolve().parents[1] / "src" / "brainage"


class Payload:
    """Unpickling this runs ``os.mkdir(marker)``: code named by the file, not by brainage."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "payload-ran"


@pytest.fixture
def evil(tmp_path, marker):
    """``{name: path}`` of files whose unpickling runs the payload."""
    files = {}
    for name in ("model.pt", "last.ckpt", "weights.pth"):  # torch's zip format
        files[name] = tmp_path / name
        torch.save({"state_dict": {"model.w": Payload(marker)}, "epoch": 3}, files[name])
    files["legacy.pkl"] = tmp_path / "legacy.pkl"  # a bare pickle, as old torch wrote
    files["legacy.pkl"].write_bytes(pickle.dumps({"w": Payload(marker)}, protocol=2))
    return files


def test_control_the_payload_runs_when_unpickled(evil, marker):
    torch.load(evil["model.pt"], weights_only=False)  # what brainage never does
    assert marker.is_dir()


@pytest.mark.parametrize("name", ["model.pt", "last.ckpt", "weights.pth", "legacy.pkl"])
def test_a_weights_file_given_as_a_run_is_refused_unread(evil, marker, name):
    from brainage.inference.predictor import Predictor

    with pytest.raises(InputError, match=rf"{name}: a file, not a run folder\. brainage never "
                                         r"unpickles weights.*Fix: pass a run folder"):
        Predictor.from_run(evil[name])
    assert not marker.exists()


@pytest.mark.parametrize(("command", "name"), [
    (["predict", "--model", "{f}", "scan.nii.gz", "-o", "{out}"], "model.pt"),
    (["predict", "{f}", "scan.nii.gz", "-o", "{out}"], "weights.pth"),
    (["explain", "{f}", "scan.nii.gz", "-o", "{out}"], "last.ckpt"),
])
def test_the_cli_refuses_a_weights_file_as_a_model(evil, marker, tmp_path, monkeypatch, capsys,
                                                    command, name):
    from brainage.cli import main

    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["brainage", *(a.format(f=evil[name], out=out)
                                                    for a in command)])
    with pytest.raises(SystemExit) as info:
        main.run()  # the console script: a user error is a message and status 2
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert f"error: {evil[name]}: a file, not a run folder. brainage never unpickles" in err
    assert "Traceback" not in err
    assert not marker.exists() and not out.exists()


def test_fine_tuning_from_a_weights_file_is_refused_unread(evil, marker):
    from brainage.training.finetune import source_info

    with pytest.raises(InputError, match=r"model\.pt: a file, not a run folder.*never unpickles"):
        source_info(evil["model.pt"])
    assert not marker.exists()


def test_a_pickle_saved_as_weights_safetensors_is_refused(evil, marker, tmp_path):
    from brainage.models.io import WEIGHTS, load_model, save_model
    from brainage.models.registry import create_model

    folder = tmp_path / "member"
    save_model(create_model("sfcn", channels=[2, 2, 2, 2], age_range=[40, 60]), folder)
    (folder / WEIGHTS).write_bytes(evil["model.pt"].read_bytes())  # a pickle in disguise
    with pytest.raises(InputError, match=r"weights\.safetensors: not a readable safetensors file"):
        load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["last.ckpt", "legacy.pkl"])
def test_a_resume_checkpoint_with_a_payload_is_refused(evil, marker, name):
    from brainage.training.trainer import read_checkpoint

    with pytest.raises(InputError, match=rf"{name}: .*(never unpickles|damaged).*Fix: delete it"):
        read_checkpoint(evil[name])
    assert not marker.exists()


def test_importing_published_weights_with_a_payload_is_refused(evil, marker, tmp_path):
    from brainage.models.convert import import_sfcn

    with pytest.raises(BrainAgeError, match="not a plain PyTorch state dict that can be read safely"):
        import_sfcn(evil["model.pt"], tmp_path / "imported")
    assert not marker.exists() and not (tmp_path / "imported").exists()


_UNPICKLERS = {("pickle", "load"), ("pickle", "loads"), ("pickle", "Unpickler"),
               ("joblib", "load"), ("pd", "read_pickle"), ("pandas", "read_pickle"),
               ("shelve", "open"), ("jit", "load")}


def _constant(call: ast.Call, name: str) -> object:
    """The constant value of keyword `name` of `call` (None when absent or not a constant)."""
    value = next((k.value for k in call.keywords if k.arg == name), None)
    return value.value if isinstance(value, ast.Constant) else None


def _unsafe_calls(tree: ast.AST) -> tuple[int, list[str]]:
    """``(number of torch.load calls, calls that may unpickle)`` of a module's code."""
    loads, unsafe = 0, []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            unsafe += [f"line {node.lineno}: imports {n}" for n in names
                       if n.split(".")[0] in ("dill", "cloudpickle", "joblib", "shelve")]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = node.func.value
        key = (owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", ""),
               node.func.attr)
        if key == ("torch", "load"):
            loads += 1
            if _constant(node, "weights_only") is not True:
                unsafe.append(f"line {node.lineno}: torch.load without weights_only=True")
        elif key in _UNPICKLERS:
            unsafe.append(f"line {node.lineno}: {key[0]}.{key[1]}")
        if _constant(node, "allow_pickle") is True:
            unsafe.append(f"line {node.lineno}: allow_pickle=True")
    return loads, unsafe


def test_the_source_never_unpickles():
    """Every ``torch.load`` in the package passes ``weights_only=True``; no other unpickler
    (pickle/joblib/dill/cloudpickle/shelve, pandas read_pickle, np.load allow_pickle=True)."""
    loads, unsafe = 0, []
    for path in sorted(SRC.rglob("*.py")):
        n, found = _unsafe_calls(ast.parse(path.read_text(), str(path)))
        loads += n
        unsafe += [f"{path.relative_to(SRC)} {f}" for f in found]
    assert loads >= 3  # the checkpoint reader, the GAN resume and the SFCN import
    assert unsafe == []


def test_the_source_check_sees_an_unsafe_load():
    code = ("import torch, pickle, numpy as np\ntorch.load(p)\ntorch.load(p, weights_only=False)\n"
            "pickle.loads(b)\nnp.load(p, allow_pickle=True)\ntorch.load(p, weights_only=True)\n")
    assert _unsafe_calls(ast.parse(code)) == (3, [
        "line 2: torch.load without weights_only=True", "line 3: torch.load without weights_only=True",
        "line 4: pickle.loads", "line 5: allow_pickle=True"])
