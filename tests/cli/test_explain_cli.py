"""``brainage explain`` through Typer's test runner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import typer
from typer.testing import CliRunner

from brainage.cli import explain as explain_cli
from brainage.errors import BrainAgeError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import make_prepared, tiny_config  # noqa: E402

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    explain_cli.register(app)
    app.command("noop")(lambda: None)  # a second command keeps 'explain' as a subcommand
    return app


@pytest.fixture(scope="module")
def run_and_arrays(tmp_path_factory):
    from brainage.training.fit import train_cohort

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cohort = make_prepared(tmp_path_factory.mktemp("prep"), n=8)
    with pytest.warns(UserWarning, match="no bias correction stored"):
        run = train_cohort(cohort, tmp_path_factory.mktemp("r") / "run", tiny_config(epochs=1))
    yield run, list(cohort.table["array_path"].iloc[:2])
    torch.set_num_threads(threads)


def test_explain_writes_maps_for_each_scan(run_and_arrays, tmp_path):
    run, arrays = run_and_arrays
    result = runner.invoke(_app(), ["explain", str(run), *arrays, "-o", str(tmp_path),
                                    "--steps", "4", "--device", "cpu", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and "predicted age" in lines[0] and "top region" in lines[0]
    assert result.stderr.strip().splitlines()[-1].startswith("explain: 2 done, 0 skipped, 0 "
                                                            "failed in ")
    for sub in ("sub-00", "sub-01"):
        assert len(list((tmp_path / sub / "anat").glob("*desc-saliency_T1w.nii.gz"))) == 1
        assert len(list((tmp_path / sub / "anat").glob("*desc-saliency_regions.tsv"))) == 1


def test_two_jobs_name_the_scan_that_failed_and_explain_the_others(run_and_arrays, tmp_path):
    run, arrays = run_and_arrays
    bad = tmp_path / "sub-07_T1w.npy"
    bad.write_bytes(b"not an array")
    one = runner.invoke(_app(), ["explain", str(run), arrays[0], str(bad), arrays[1], "-o",
                                 str(tmp_path / "one"), "--steps", "4", "--device", "cpu",
                                 "--jobs", "1", "--no-progress"])
    two = runner.invoke(_app(), ["explain", str(run), arrays[0], str(bad), arrays[1], "-o",
                                 str(tmp_path / "two"), "--steps", "4", "--device", "cpu",
                                 "--jobs", "2", "--no-progress"])
    for result in (one, two):
        assert result.exit_code == 1, result.output
        assert result.stdout.count("predicted age") == 2
        assert f"not explained  {bad}: " in result.stdout
        assert "explain: 2 done, 0 skipped, 1 failed in " in result.stderr
    assert one.stdout == two.stdout.replace(str(tmp_path / "two"), str(tmp_path / "one"))
    assert (tmp_path / "two" / "sub-01" / "anat").is_dir()
    assert not (tmp_path / "two" / "sub-07").exists()


def test_occlusion_method(run_and_arrays, tmp_path):
    run, arrays = run_and_arrays
    result = runner.invoke(_app(), ["explain", str(run), arrays[0], "-o", str(tmp_path),
                                    "--method", "occlusion", "--patch", "6"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("args", "message"), [
    (["explain", "{tmp}/missing-run", "{tmp}/x.npy"], "run folder not found"),
    (["explain", "{run}", "{tmp}/missing.npy"], "prepared array not found"),
    (["explain", "{run}", "{tmp}/bad.nii.gz"], "could not be read"),
    (["explain", "{run}", "{array}", "--method", "magic"], "unknown method 'magic'"),
    (["explain", "{run}", "{array}", "--sex", "X"], "sex must be F or M"),
])
def test_user_errors_are_brainage_errors(run_and_arrays, tmp_path, args, message):
    run, arrays = run_and_arrays
    (tmp_path / "bad.nii.gz").write_bytes(b"garbage")
    argv = [a.format(tmp=tmp_path, run=run, array=arrays[0]) for a in args]
    result = runner.invoke(_app(), [*argv, "-o", str(tmp_path / "out")])
    assert isinstance(result.exception, BrainAgeError), result.output
    assert message in str(result.exception)


def test_help_works_without_importing_torch():
    import subprocess

    code = ("import sys; import brainage.cli.explain; "
            "sys.exit('torch' in sys.modules or 'nibabel' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    result = runner.invoke(_app(), ["explain", "--help"])
    assert result.exit_code == 0 and "--method" in result.output
