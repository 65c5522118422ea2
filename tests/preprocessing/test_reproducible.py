"""Test-retest of the software itself: the same scan and spec give the same bytes (issue 14).

ANTs' multithreaded Mattes metric sums per-thread results in a varying order, so with
several ITK threads two runs registered the same scan differently (up to 0.26 z units per
voxel and 1 ml of brain volume on IXI). ITK now runs single-threaded unless asked
otherwise; ``--threads`` only sets torch's threads. ITK reads its thread count once per
process, so each run is its own process here.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_SCRIPT = """
import sys
from brainage.cli.main import app
out = sys.argv[1]
app(["simulate", f"{out}/sim", "--n", "1", "--sites", "1", "--voxel-size", "4"],
    standalone_mode=False)
for name in ("a", "b"):
    app(["prepare", f"{out}/sim", f"{out}/{name}", "--grid", "8mm:20x24x18", "--no-n4",
         "--threads", "2", "--no-progress"], standalone_mode=False)
"""


@pytest.mark.slow
def test_one_scan_prepared_twice_with_two_threads_gives_the_same_bytes(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", _SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    arrays = [tmp_path / run / "cache" / "arrays" / "sub-001.npy" for run in ("a", "b")]
    assert arrays[0].read_bytes() == arrays[1].read_bytes()
    for pattern in ("*desc-brain_mask.nii.gz", "*desc-preproc_T1w.nii.gz"):
        # the gzip header holds no timestamp, so the NIfTI files are byte-identical too
        files = [next((tmp_path / run / "sub-001" / "anat").glob(pattern)) for run in "ab"]
        assert files[0].read_bytes() == files[1].read_bytes(), pattern


def test_itk_runs_single_threaded_unless_asked(monkeypatch):
    from brainage.preprocessing.antsio import set_threads

    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "8")
    monkeypatch.setitem(sys.modules, "torch", None)  # torch's own count is not at stake here
    monkeypatch.delitem(sys.modules, "torch")
    set_threads(4)
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "1"
    set_threads(4, itk_threads=3)
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"
