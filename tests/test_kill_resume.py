"""SIGKILL mid-run and two writers at once, for the long commands (issue 24, item 4).

Each command runs as a real subprocess, is killed with SIGKILL once it has visibly started
work, and is rerun: the rerun resumes to the same result, and no complete-looking partial
output is left in between.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import brainage

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
from synthetic_runs import make_prepared  # noqa: E402

SRC = str(Path(brainage.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
TRAIN = ["--set", "model.kwargs={channels: [4, 8, 4]}", "--set", "loss.name=mse",
         "--set", "batch_size=4", "--set", "progress_bar=false", "--set", "accelerator=cpu",
         "--set", "model.name=sfcn", "--set", "repeats=1", "--set", "model.kwargs.input_pool=1",
         "--set", "tensorboard=false", "--folds", "2"]
TIMEOUT = 60


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "brainage", *map(str, args)]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(*args), env=ENV, capture_output=True, text=True,
                          timeout=TIMEOUT)


def _start(log: Path, *args: str) -> subprocess.Popen:
    with open(log, "w") as f:
        return subprocess.Popen(_cmd(*args), env=ENV, stdout=f, stderr=subprocess.STDOUT)


def _kill_when(proc: subprocess.Popen, started, log: Path) -> None:
    """SIGKILL `proc` as soon as `started()` holds; fail if it ends or hangs first."""
    deadline = time.time() + TIMEOUT
    while not started():
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be killed:\n{log.read_text()}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"never visibly started:\n{log.read_text()}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    make_prepared(root / "prep", n=16)
    make_prepared(root / "many", n=300, seed=1)
    return root


@pytest.fixture(scope="module")
def reference(prepared):
    """An uninterrupted run of `train` (4 epochs, 2 folds)."""
    result = _run("train", prepared / "prep", prepared / "ref", *TRAIN, "--set", "epochs=4")
    assert result.returncode == 0, result.stdout + result.stderr
    return prepared / "ref"


@pytest.mark.slow
def test_train_killed_mid_run_resumes_to_the_same_run(prepared, reference, tmp_path):
    run = tmp_path / "run"
    args = ("train", prepared / "prep", run, *TRAIN, "--set", "epochs=4")
    proc = _start(tmp_path / "log", *args)
    _kill_when(proc, lambda: (run / "fold-0/checkpoints/last.ckpt").exists(), tmp_path / "log")
    assert not (run / "run.json").exists() and not (run / "predictions.tsv").exists()
    assert not (run / "fold-1/weights.safetensors").exists()
    result = _run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    a = pd.read_csv(reference / "predictions.tsv", sep="\t")
    b = pd.read_csv(run / "predictions.tsv", sep="\t")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_predict_killed_mid_run_leaves_no_table_and_reruns(prepared, reference, tmp_path):
    out = tmp_path / "p.tsv"
    args = ("predict", reference, prepared / "many", "-o", out, "--jobs", "1")
    proc = _start(tmp_path / "log", *args)
    time.sleep(0.5)  # import and model load: the kill lands before or while predicting
    _kill_when(proc, lambda: True, tmp_path / "log")
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name and p.suffix == ".tsv"]
    result = _run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(pd.read_csv(out, sep="\t")) == 300 and out.with_suffix(".json").is_file()


@pytest.mark.slow
def test_two_trains_into_one_run_folder_serialise_or_the_second_refuses(prepared, tmp_path):
    run = tmp_path / "run"
    args = ("train", prepared / "prep", run, *TRAIN, "--set", "epochs=10")
    first = _start(tmp_path / "log", *args)
    deadline = time.time() + TIMEOUT
    while not (run / ".lock").exists() and time.time() < deadline and first.poll() is None:
        time.sleep(0.02)
    second = _run(*args)
    assert first.wait(TIMEOUT) == 0, (tmp_path / "log").read_text()
    said = second.stdout + second.stderr
    if second.returncode == 0:  # it took the lock only after the first had finished
        assert "run already complete; nothing to do" in said, said
    else:
        assert "in use by pid" in said, said
    assert (run / "run.json").is_file()
