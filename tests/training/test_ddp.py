"""Multi-process training through Lightning's DDP: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest


@pytest.mark.slow
def test_ddp_two_cpu_processes_agree(tmp_path):
    job = Path(__file__).with_name("ddp_job.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(job), str(tmp_path)], env=env, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert [r[1] for r in ranks] == ["2", "2"]  # both processes saw a world of 2
    splits = json.loads((tmp_path / "run" / "splits.json").read_text())
    n_train = len(splits["folds"][0]["train"])  # one scan per subject in this cohort
    assert 0 < n_train < 12
    assert [int(r[2]) for r in ranks] == [n_train, n_train]  # the fold's whole train set
    assert ranks[0][0] == ranks[1][0]  # gradients were all-reduced: same weights
    preds = pd.read_csv(tmp_path / "run" / "predictions.tsv", sep="\t")
    assert preds["predicted_age"].notna().all()
    assert (tmp_path / "run" / "run.json").is_file()


@pytest.mark.slow
def test_ddp_pretraining_on_two_cpu_processes_agrees(tmp_path):
    job = Path(__file__).with_name("ddp_pretrain_job.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(job), str(tmp_path)], env=env, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [(tmp_path / f"rank{r}.txt").read_text().split() for r in (0, 1)]
    assert [r[1] for r in ranks] == ["2", "2"]
    n_train = len(json.loads((tmp_path / "run" / "splits.json").read_text())["folds"][0]["train"])
    assert [int(r[2]) for r in ranks] == [n_train, n_train] and n_train == 9
    assert ranks[0][0] == ranks[1][0]  # gradients all-reduced: the same encoder on both ranks
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["kind"] == "encoder" and (tmp_path / "run" / "projection.safetensors").is_file()
