"""Scale-out options (issue 22, item 5): cluster profiles, SLURM parameters, srun lines."""

from __future__ import annotations

import pytest

from brainage.cluster import executor_parameters, make_executor, srun_train_command
from brainage.cluster.profile import (
    ClusterProfile,
    load_profile,
    parse_gb,
    parse_minutes,
    profile_from_dict,
    with_options,
)
from brainage.errors import InputError, NotFoundError


def test_a_profile_file_is_read_and_validated(tmp_path):
    path = tmp_path / "hpc.yaml"
    path.write_text("partition: cpu\ntime: '1-02:30:00'\nmem: 4000M\ncpus_per_task: 4\n"
                    "array_parallelism: 16\naccount: lab\nsetup: source ~/venv/bin/activate\n"
                    "extra: {constraint: avx2}\n")
    profile = load_profile(path)
    assert profile.partition == "cpu" and profile.time == 24 * 60 + 150
    assert profile.mem == pytest.approx(4000 / 1024) and profile.cpus_per_task == 4
    assert profile.setup == ("source ~/venv/bin/activate",)
    assert profile.extra == {"constraint": "avx2"} and profile.array_parallelism == 16


@pytest.mark.parametrize("data, match", [
    ({"partiton": "cpu"}, r"unknown key\(s\) 'partiton'.*expected partition.*Fix"),
    ({"time": "soon"}, r"'time' = 'soon': expected minutes.*Fix"),
    ({"mem": "lots"}, r"'mem' = 'lots': expected memory in GB.*Fix"),
    ({"cpus_per_task": 0}, r"'cpus_per_task' = 0: expected a whole number >= 1"),
    ({"array_parallelism": 2.5}, r"'array_parallelism' = 2.5: expected a whole number"),
    ({"extra": ["x"]}, r"'extra': expected a mapping of sbatch options"),
    ({"setup": [1]}, r"'setup': expected shell lines"),
    (["cpu"], r"expected a mapping of keys.*got list"),
])
def test_a_bad_profile_names_the_key_and_the_fix(data, match):
    with pytest.raises(InputError, match=match):
        profile_from_dict(data, "hpc.yaml")


def test_missing_or_broken_profile_files(tmp_path):
    with pytest.raises(NotFoundError, match=r"cluster profile .*nope.yaml not found.*Fix"):
        load_profile(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("partition: [cpu\n")
    with pytest.raises(InputError, match=r"bad.yaml is not valid YAML"):
        load_profile(bad)


def test_time_and_memory_forms():
    assert parse_minutes(90) == 90 and parse_minutes("01:30:00") == 90
    assert parse_minutes("2-00:00:00") == 2880 and parse_minutes("30:30") == 31
    assert parse_gb(16) == 16 and parse_gb("1T") == 1024 and parse_gb("512M") == 0.5
    with pytest.raises(InputError, match="expected at least one minute"):
        parse_minutes("00:00:00")


def test_slurm_parameters_reach_submitits_slurm_executor(tmp_path, monkeypatch):
    """The parameters handed to AutoExecutor.update_parameters, and what the SLURM
    executor makes of them (the sbatch script), without submitting anything."""
    import os

    bin_dir = tmp_path / "bin"  # stand-ins: submitit looks for srun, make_executor for sbatch
    bin_dir.mkdir()
    for tool in ("srun", "sbatch"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    profile = with_options(profile_from_dict({
        "partition": "cpu", "time": 120, "mem": "6G", "cpus_per_task": 4, "qos": "long",
        "gpus_per_node": 1, "setup": ["module load foo"], "extra": {"constraint": "avx2"}}),
        partition="big", array_parallelism=12)
    params = executor_parameters(profile, "slurm", "brainage-predict")
    assert params == {
        "name": "brainage-predict", "timeout_min": 120, "cpus_per_task": 4, "mem_gb": 6.0,
        "slurm_array_parallelism": 12, "slurm_partition": "big", "gpus_per_node": 1,
        "slurm_setup": ["module load foo"],
        "slurm_additional_parameters": {"constraint": "avx2", "qos": "long"}}
    executor = make_executor("slurm", tmp_path / "logs", profile, "brainage-predict")
    script = executor._executor._make_submission_file_text("python job.py", "0")
    for line in ("#SBATCH --partition=big", "#SBATCH --time=120", "#SBATCH --mem=6GB",
                 "#SBATCH --cpus-per-task=4", "#SBATCH --constraint=avx2",
                 "#SBATCH --qos=long", "#SBATCH --gpus-per-node=1", "module load foo"):
        assert line in script
    assert executor._executor.parameters["array_parallelism"] == 12


def test_local_parameters_and_executor_errors(tmp_path, monkeypatch):
    params = executor_parameters(ClusterProfile(partition="cpu"), "local", "x")
    assert params == {"name": "x", "timeout_min": 240, "cpus_per_task": 2}  # no SLURM keys
    with pytest.raises(InputError, match=r"--executor 'pbs': expected one of local, slurm"):
        make_executor("pbs", tmp_path, ClusterProfile())
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(InputError, match=r"sbatch is not on this machine's PATH.*--executor local"):
        make_executor("slurm", tmp_path, ClusterProfile())
    with pytest.raises(InputError, match=r"--array-parallelism = 0: expected a whole number"):
        with_options(ClusterProfile(), array_parallelism=0)


def test_srun_line_for_lightning_ddp():
    cmd = srun_train_command("prep", "run", nodes=2, gpus_per_node=4, partition="gpu",
                             time="12:00:00", extra_set=["epochs=20"])
    assert cmd[:6] == ["srun", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4",
                       "--partition=gpu", "--time=12:00:00"]
    assert cmd[6:12] == ["brainage", "train", "prep", "run", "-c", "tsan"]
    sets = [cmd[i + 1] for i, x in enumerate(cmd) if x == "--set"]
    assert sets == ["accelerator=gpu", "devices=4", "num_nodes=2", "strategy=ddp", "epochs=20"]
    with pytest.raises(InputError, match=r"nodes = 0: expected a whole number >= 1"):
        srun_train_command("p", "r", nodes=0, gpus_per_node=1)
