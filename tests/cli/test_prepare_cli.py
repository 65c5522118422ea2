"""``brainage prepare``: a thin shell over run_cohort (the pipeline is faked here)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.prepare import register
from brainage.preprocessing import pipeline
from brainage.preprocessing.spec import SPEC_FILE, PreprocessingSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "preprocessing"))
from prep_helpers import blob, fake_preprocess, write_nifti  # noqa: E402


@pytest.fixture
def table(tmp_path) -> Path:
    raw = tmp_path / "raw"
    rows = [("sub-01", write_nifti(raw / "a.nii.gz", blob(seed=1)), 30),
            ("sub-02", write_nifti(raw / "b.nii.gz", blob(seed=2)), 40),
            ("sub-03", write_nifti(raw / "c.nii.gz", np.zeros((24, 28, 20), np.float32)), 50)]
    path = tmp_path / "cohort.csv"
    pd.DataFrame([{"participant_id": p, "path": str(f), "age": a} for p, f, a in rows]
                 ).to_csv(path, index=False)
    return path


@pytest.fixture(autouse=True)
def fake(monkeypatch):
    monkeypatch.setattr(pipeline, "preprocess", fake_preprocess)


def _prepare(*args: str):
    """The command in this process (--jobs 1 unless given: the fake pipeline is patched in)."""
    app = typer.Typer()
    register(app)

    @app.callback()
    def _main() -> None:  # keep `prepare` a subcommand
        pass

    jobs = [] if "--jobs" in args else ["--jobs", "1"]
    return CliRunner().invoke(app, ["prepare", *args, *jobs])


def test_prepare_writes_outputs_and_reports_failures(table, tmp_path):
    out = tmp_path / "out"
    res = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert res.exit_code == 1, res.output  # one scan failed (empty image)
    assert "prepared 3 scan(s)" in res.stdout and "failed  sub-03" in res.stdout
    assert "empty" in res.stdout
    spec = json.loads((out / SPEC_FILE).read_text())
    assert spec["spec"]["grid"]["shape"] == [20, 24, 18]
    index = pd.read_csv(out / "index.tsv", sep="\t")
    assert list(index["status"]) == ["ok", "ok", "failed"]
    again = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert "skipped 2 finished" in again.stdout


def test_participant_labels_and_shards(table, tmp_path):
    res = _prepare(str(table), str(tmp_path / "o1"), "--grid", "8mm:20x24x18",
                   "--participant-label", "01,02", "--no-progress")
    assert res.exit_code == 0 and "of 2 selected" in res.stdout
    res = _prepare(str(table), str(tmp_path / "o2"), "--grid", "8mm:20x24x18",
                   "--shard", "1/3", "--no-progress")
    assert res.exit_code == 0 and "of 1 selected" in res.stdout


def test_usage_errors_exit_2(table, tmp_path):
    res = _prepare(str(table), str(tmp_path / "o"), "--shard", "0/3")
    assert res.exit_code == 2 and "--shard" in res.stderr
    res = _prepare(str(table), str(tmp_path / "o"), "--grid", "tsam")
    assert res.exit_code == 2 and "did you mean 'tsan'" in res.stderr
    res = _prepare(str(table), str(tmp_path / "o"), "--skullstrip", "bet")
    assert res.exit_code == 2 and "skullstrip" in res.stderr


def test_spec_file_and_mixing_refusal(table, tmp_path):
    spec = PreprocessingSpec.create("8mm:20x24x18", normalisation="minmax")
    spec_path = spec.save(tmp_path / "model_spec.json")
    out = tmp_path / "out"
    res = _prepare(str(table), str(out), "--spec", str(spec_path), "--participant-label", "01",
                   "--no-progress")
    assert res.exit_code == 0, res.output
    assert PreprocessingSpec.load(out).hash == spec.hash
    res = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert res.exit_code == 2 and "normalisation" in res.stderr


def test_registered_in_the_main_app():
    from brainage.cli.main import app

    names = {c.name for c in app.registered_commands}
    if "prepare" not in names:
        pytest.skip("prepare is not registered in brainage.cli.main yet")
    res = CliRunner().invoke(app, ["prepare", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0 and "--participant-label" in res.stdout


def test_ctrl_c_prints_one_line_with_what_was_kept_and_exits_130(table, tmp_path, monkeypatch):
    from brainage.preprocessing import workers

    real, calls = workers.process_scan, []

    def interrupt_the_second(root, spec_dict, task):
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(root, spec_dict, task)

    monkeypatch.setattr(workers, "process_scan", interrupt_the_second)
    out = tmp_path / "out"
    res = _prepare(str(table), str(out), "--grid", "8mm:20x24x18", "--no-progress")
    assert res.exit_code == 130  # was a silent 130 with no index.tsv
    *progress, line = res.stderr.strip().splitlines()  # progress log lines, then one line
    assert line.startswith(f"interrupted: kept 1 finished scan(s) in {out}")
    assert progress == ["prepare: 1/3 scans" + progress[0].split("scans", 1)[1]]
    assert "Traceback" not in res.stderr
    assert (out / "index.tsv").is_file()


@pytest.mark.slow
def test_ctrl_c_with_worker_processes_leaves_no_traceback(tmp_path):
    """A real SIGINT to the process group, as a terminal sends it; workers run the pipeline."""
    import os
    import signal
    import subprocess
    import time

    raw = tmp_path / "raw"
    rows = [{"participant_id": f"sub-{i:02d}",
             "path": str(write_nifti(raw / f"{i}.nii.gz", blob(seed=i)))} for i in range(12)]
    pd.DataFrame(rows).to_csv(tmp_path / "c.csv", index=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", "import signal; signal.signal(signal.SIGINT, "
           "signal.default_int_handler); from brainage.cli.main import run; run()",
           "prepare", str(tmp_path / "c.csv"), str(out), "--grid", "8mm:20x24x18",
           "--jobs", "2", "--threads", "1", "--no-progress", "--no-n4"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "cache" / "records").glob("*.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    _stdout, stderr = proc.communicate(timeout=60)
    text = stderr.decode()
    if proc.returncode == 0:
        pytest.skip("every scan finished before the interrupt")
    assert proc.returncode == 130 and "Traceback" not in text, text
    assert "interrupted: kept" in text and "running the same command again" in text


def test_bids_cohort_problems_are_warnings_and_the_run_continues(tmp_path):
    import shutil

    bids = tmp_path / "bids"
    for label, seed in (("01", 1), ("02", 2)):
        write_nifti(bids / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz", blob(seed=seed))
    shutil.copytree(bids / "sub-02", bids / "sub-03")  # a subject with no participants.tsv row
    (bids / "sub-03" / "anat" / "sub-02_T1w.nii.gz").rename(
        bids / "sub-03" / "anat" / "sub-03_T1w.nii.gz")
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t30\nsub-02\t40\n"
                                           "sub-09\t50\n")
    from brainage.cli.main import app  # its argv rewrite takes labels after one flag

    res = CliRunner().invoke(app, ["prepare", str(bids), str(tmp_path / "out"), "--grid",
                                   "8mm:20x24x18", "--no-progress", "--participant-label",
                                   "01", "sub-03"])
    assert res.exit_code == 0, res.output
    assert "of 2 selected" in res.stdout
    assert "warning: 1 participant(s) listed in" in res.stderr and "sub-09 (row 3)" in res.stderr
    assert "no row in participants.tsv" in res.stderr and "sub-03" in res.stderr
