"""The README's real-data tour, on a tiny IXI subset: prepare, train the default, predict a
scan the model never saw. Skips without ../shared/data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

IXI = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ixi-hh-2mm"
TRAIN = ["IXI013", "IXI014", "IXI015", "IXI033", "IXI048", "IXI049", "IXI056", "IXI072",
         "IXI083", "IXI092"]
HELD_OUT = "IXI093"

pytestmark = [pytest.mark.slow, pytest.mark.realdata,
              pytest.mark.skipif(not IXI.is_dir(), reason="../shared/data is absent")]


def brainage(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "brainage"
    out = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return out


def test_readme_tour_on_a_tiny_ixi_subset(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "brainage prepare ../shared/data/ixi-hh-2mm ixi/prepared --jobs 2" in readme
    assert "brainage train ixi/prepared ixi/run --folds 5" in readme
    prepared, run = tmp_path / "prepared", tmp_path / "run"
    brainage("prepare", str(IXI), str(prepared), "--jobs", "2", "--no-progress",
             "--participant-label", *TRAIN)
    out = brainage("train", str(prepared), str(run), "--folds", "3")
    assert "tissue_ridge" in out.stderr  # the default for scans with tissue maps, said
    scan = IXI / f"sub-{HELD_OUT}" / "anat" / f"sub-{HELD_OUT}_T1w.nii.gz"
    table_path = tmp_path / "new.tsv"
    brainage("predict", str(run), str(scan), "-o", str(table_path))
    table = pd.read_csv(table_path, sep="\t")
    assert table["participant_id"].tolist() == [f"sub-{HELD_OUT}"]
    assert 10 < table["predicted_age"].iloc[0] < 100
