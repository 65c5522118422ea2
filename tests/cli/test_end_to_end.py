"""End to end through the real CLI: simulate -> prepare -> train 1 epoch -> predict a raw scan."""

from __future__ import annotations

import pandas as pd
import torch
from typer.testing import CliRunner

from brainage.cli.main import app

TINY_TRAIN = ["--folds", "2", "--set", "epochs=1", "--set", "batch_size=2",
              "--set", "progress_bar=false", "--set", "accelerator=cpu",
              "--set", "model.kwargs={channels: [4, 8, 4], input_pool: 1}",
              "--set", "model.name=sfcn", "--set", "repeats=1"]


def _run(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_simulate_prepare_train_predict(tmp_path):
    torch.set_num_threads(1)
    bids, prepared, run = tmp_path / "bids", tmp_path / "prepared", tmp_path / "run"
    _run("simulate", str(bids), "--n", "4", "--sites", "2", "--seed", "3",
         "--voxel-size", "4")
    _run("prepare", str(bids), str(prepared), "--grid", "6mm:30x36x30", "--no-n4",
         "--no-progress")
    qc = pd.read_csv(prepared / "qc.tsv", sep="\t")
    assert len(qc) == 4 and set(qc["status"]) == {"ok"}
    _run("train", str(prepared), str(run), *TINY_TRAIN)
    assert (run / "run.json").is_file() and (run / "fold-1" / "weights.safetensors").is_file()
    scan = next(bids.glob("sub-*/anat/*_T1w.nii.gz"))
    out = tmp_path / "new.tsv"
    _run("predict", str(run), str(scan), "-o", str(out))
    pred = pd.read_csv(out, sep="\t")
    assert len(pred) == 1 and pred["predicted_age"].notna().all()
    assert {"participant_id", "predicted_age", "gap"} <= set(pred.columns)
