"""The BIDS App: two participant-level processes into one folder at once, then the group level."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import brainage
from brainage.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_runs import make_prepared, spec_for_tests, tiny_config  # noqa: E402

from bids_validation import assert_valid, validate  # noqa: E402

SRC = str(Path(brainage.__file__).resolve().parents[1])
LABELS = ["001", "002", "003", "004", "005"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A 5-subject BIDS dataset and a tiny run on an 8 mm grid (trained on other arrays)."""
    import torch

    from brainage.training.fit import train_cohort

    root = tmp_path_factory.mktemp("bidsapp")
    bids = brainage.simulate(root / "bids", n=5, sites=2, seed=4, voxel_size=4,
                             patient_fraction=0.4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    prepared = make_prepared(root / "prep", n=8, spec=spec_for_tests(n4=False))
    with pytest.warns(UserWarning, match="no bias correction stored"):
        run = train_cohort(prepared, root / "run", tiny_config(epochs=1))
    torch.set_num_threads(threads)
    return bids, run


def _participant(bids: Path, out: Path, run: Path, *labels: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "brainage.cli.main", str(bids), str(out), "participant",
           "--participant-label", *labels, "--model", str(run), "--explain-steps", "2",
           "--threads", "1", "--jobs", "1", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _leftovers(out: Path) -> list[str]:
    return [str(p) for p in out.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name
            or p.name.endswith(".lock")]


@pytest.mark.slow
def test_two_participant_processes_then_group(dataset, tmp_path):
    bids, run = dataset
    out = tmp_path / "derivatives"
    # overlapping selections, in the BIDS-App form (spaces) and ours (sub-, commas)
    procs = [_participant(bids, out, run, "001", "002", "sub-003"),
             _participant(bids, out, run, "003,004", "sub-005", "002")]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "brainage"
    assert description["BrainAgeModel"]["Run"] == str(run.resolve())
    for label in LABELS:
        sub = out / f"sub-{label}"
        table = pd.read_csv(sub / f"sub-{label}_predictions.tsv", sep="\t")
        assert list(table["participant_id"]) == [f"sub-{label}"]
        assert table["predicted_age"].notna().all() and table["age"].notna().all()
        sidecar = json.loads((sub / f"sub-{label}_predictions.json").read_text())
        assert set(sidecar) == set(table.columns)
        assert sidecar["predicted_age"]["Units"] == "year"
        anat = sub / "anat"
        for pattern in ("*desc-preproc_T1w.nii.gz", "*desc-brain_mask.nii.gz",
                        "*desc-saliency_T1w.nii.gz", "*desc-saliency_regions.tsv"):
            assert len(list(anat.glob(pattern))) == 1, (label, pattern, logs)
    assert _leftovers(out) == []
    # each subject was done once: by one process, named by the other as busy or finished
    done = [line.split()[-1] for log in logs for line in log.splitlines()
            if line.strip().startswith("done ")]
    assert sorted(done) == [f"sub-{lab}" for lab in LABELS], logs

    # fitting on the 2 controls is refused (20 needed): clear error, no group folder at all
    result = CliRunner().invoke(app, [str(bids), str(out), "group", "--n-boot", "20",
                                      "--fit-on", "group==control"])
    assert result.exit_code == 2 and "fit the bias correction on 2 subject(s)" in result.output
    assert not (out / "group").exists() and _leftovers(out) == []
    result = CliRunner().invoke(app, [str(bids), str(out), "group", "--n-boot", "20"])
    assert result.exit_code == 0, result.output
    group = pd.read_csv(out / "group" / "predictions.tsv", sep="\t")
    assert sorted(group["participant_id"]) == [f"sub-{lab}" for lab in LABELS]
    assert set(json.loads((out / "group" / "predictions.json").read_text())) == set(group)
    assert (out / "group" / "evaluation" / "metrics.json").is_file()
    assert "Wrote " in result.output and str(out / "group" / "evaluation") in result.output
    assert (out / "group" / "report.html").stat().st_size > 10_000
    assert _leftovers(out) == []
    assert_valid(validate(out), "bids-app")  # the real pipeline's files, native maps too

    rerun = _participant(bids, out, run, *LABELS)
    log = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0 and "0 subject(s) processed, 5 already finished" in log, log


def test_a_failing_subject_leaves_nothing_and_others_finish(dataset, tmp_path):
    import shutil

    bids, run = dataset
    copy = tmp_path / "bids"
    shutil.copytree(bids, copy, ignore=shutil.ignore_patterns("derivatives"))
    bad = next((copy / "sub-002" / "anat").glob("*_T1w.nii.gz"))
    bad.write_bytes(b"not a nifti")
    participants = copy / "participants.tsv"
    columns = participants.read_text().splitlines()[0].count("\t")
    with participants.open("a") as f:  # listed, no scan: a warning, the run goes on
        f.write("sub-099" + "\tn/a" * columns + "\n")
    out = tmp_path / "out"
    summary = brainage.bids_participant(copy, out, run, ["001", "002", "099"], explain=False,
                                        threads=1, device="cpu")
    assert summary.done == ["sub-001"] and [s for s, _ in summary.failed] == ["sub-002"]
    (warning,) = summary.warnings
    assert "sub-099 (row 6)" in warning and "have no scan (left out)" in warning
    assert "preprocessing failed" in summary.failed[0][1]
    assert not (out / "sub-002").exists() and _leftovers(out) == []
    assert not list((out / "sub-001" / "anat").glob("*saliency*"))  # --no-explain


def test_two_jobs_give_the_files_of_one_and_name_the_failed_subject(dataset, tmp_path):
    """Subjects in two worker processes: the same bytes as one process, a failure named."""
    import gzip
    import shutil

    bids, run = dataset
    copy = tmp_path / "bids"
    shutil.copytree(bids, copy, ignore=shutil.ignore_patterns("derivatives"))
    next((copy / "sub-003" / "anat").glob("*_T1w.nii.gz")).write_bytes(b"not a nifti")
    seen: list[tuple[int, int]] = []
    summaries = [brainage.bids_participant(
        copy, tmp_path / f"out{jobs}", run, ["001", "003"], explain=False,
        device="cpu", jobs=jobs, progress=lambda d, t: seen.append((d, t)))
        for jobs in (1, 2)]
    for summary in summaries:
        assert summary.done == ["sub-001"] and [s for s, _ in summary.failed] == ["sub-003"]
    assert seen == [(1, 2), (2, 2)] * 2
    files = sorted(p.relative_to(tmp_path / "out1") for p in (tmp_path / "out1").rglob("*")
                   if p.is_file() and p.name != "dataset_description.json")
    assert len(files) >= 5
    def content(path: Path) -> object:  # a .gz without its time stamp, JSON without timings
        data = path.read_bytes()
        if path.name.endswith(".json"):
            return _without(json.loads(data), ("seconds", "cpu_seconds"))
        return gzip.decompress(data) if path.name.endswith(".gz") else data

    for rel in files:  # arrays, masks, QC and predictions, byte for byte
        assert content(tmp_path / "out1" / rel) == content(tmp_path / "out2" / rel), rel


def _without(value: object, keys: tuple[str, ...]) -> object:
    """`value` (JSON) without `keys` at any depth."""
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return [_without(v, keys) for v in value] if isinstance(value, list) else value


def test_output_folder_of_another_model_is_refused(dataset, tmp_path):
    from brainage.bidsapp.outputs import ensure_description
    from brainage.errors import InputError

    bids, run = dataset
    out = tmp_path / "out"
    first = ensure_description(out, bids, run, "a" * 64)
    text = first.read_text()
    ensure_description(out, bids, run, "a" * 64)  # valid: left as it is
    assert first.read_text() == text and _leftovers(out) == []
    with pytest.raises(InputError, match="holds outputs of model .*pass the same --model"):
        ensure_description(out, bids, run, "b" * 64)
    first.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a brainage derivative"):
        ensure_description(out, bids, run, "a" * 64)


def test_group_level_needs_the_participant_level(dataset, tmp_path):
    bids, _run = dataset
    result = CliRunner().invoke(app, [str(bids), str(tmp_path / "empty"), "group"])
    assert result.exit_code == 2 and "run `brainage BIDS_DIR OUTPUT_DIR participant` first" \
        in result.output
    assert not (tmp_path / "empty" / "group").exists()
