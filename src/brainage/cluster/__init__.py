"""Scale-out through submitit: executors, shard arrays, srun lines (cluster profiles:
:mod:`brainage.cluster.profile`).

``prepare`` and ``predict`` split their scans into N shards (the same selection as
``--shard k/N`` in one process) and submit them as one job array:

- ``--executor slurm``: a SLURM array (:class:`submitit.AutoExecutor` with
  ``cluster="slurm"``), with the partition, time, memory, cores and array parallelism of
  the command line or of a YAML cluster profile (:mod:`brainage.cluster.profile`);
- ``--executor local``: the same jobs as local subprocesses (submitit's LocalExecutor);
- ``debug`` (tests only): in this process (submitit's DebugExecutor).

:func:`run_array` submits, waits and returns each shard's result or the reason it failed,
with the shard's log files. Training at scale stays on Lightning DDP:
:func:`srun_train_command` writes the ``srun`` line (README, Scaling).
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brainage.cluster.profile import ClusterProfile, positive_int
from brainage.errors import BrainAgeError, InputError

#: Executors a command accepts (``debug`` runs in this process; meant for tests).
EXECUTORS = ("local", "slurm", "debug")


def executor_parameters(profile: ClusterProfile, kind: str, name: str) -> dict[str, Any]:
    """Keyword arguments for ``AutoExecutor.update_parameters`` of `kind`."""
    params: dict[str, Any] = {"name": name, "timeout_min": profile.time,
                              "cpus_per_task": profile.cpus_per_task}
    if kind != "slurm":
        return params
    additional = dict(profile.extra)
    for key in ("account", "qos"):
        value = getattr(profile, key)
        if value is not None:
            additional.setdefault(key, value)
    params.update(mem_gb=profile.mem, slurm_array_parallelism=profile.array_parallelism)
    if profile.partition is not None:
        params["slurm_partition"] = profile.partition
    if profile.gpus_per_node:
        params["gpus_per_node"] = profile.gpus_per_node
    if profile.setup:
        params["slurm_setup"] = list(profile.setup)
    if additional:
        params["slurm_additional_parameters"] = additional
    return params


def make_executor(kind: str, folder: str | Path, profile: ClusterProfile,
                  name: str = "brainage") -> Any:
    """A submitit executor of `kind` writing its job files and logs under `folder`.

    Raises:
        InputError: an unknown kind, or ``slurm`` where ``sbatch`` cannot be found.
    """
    import shutil

    import submitit

    if kind not in EXECUTORS:
        raise InputError(f"--executor {kind!r}: expected one of {', '.join(EXECUTORS[:2])}. "
                         "Fix: --executor slurm on a cluster, --executor local here.")
    if kind == "slurm" and shutil.which("sbatch") is None:
        raise InputError("--executor slurm: sbatch is not on this machine's PATH. Fix: run "
                         "the command on a SLURM login node, or use --executor local.")
    executor = submitit.AutoExecutor(folder=str(folder), cluster=kind)
    executor.update_parameters(**executor_parameters(profile, kind, name))
    return executor


class ShardsFailed(BrainAgeError):
    """Some shard jobs failed (each named with its logs); finished shards are kept."""


@dataclass
class ShardOutcome:
    """One shard job: its number (1-based), result or error, and its log files."""

    shard: int
    result: Any = None
    error: str | None = None
    logs: list[str] = field(default_factory=list)


def run_array(executor: Any, fn: Callable[..., Any], args: Sequence[Any],
              shards: Sequence[int]) -> list[ShardOutcome]:
    """Submit ``fn(arg)`` for each arg as one job array, wait, and collect the outcomes.

    A failing shard is an outcome with its error (the last line of the job's traceback)
    and its log files; the other shards go on.
    """
    jobs = executor.map_array(fn, list(args))
    outcomes = []
    for shard, job in zip(shards, jobs, strict=True):
        paths = getattr(job, "paths", None)
        logs = [str(p) for p in (paths.stdout, paths.stderr)] if paths is not None else []
        try:
            outcomes.append(ShardOutcome(shard, result=job.result(), logs=logs))
        except Exception as exc:  # a job's exception or a scheduler failure
            last = str(exc).strip().splitlines()[-1:] or [type(exc).__name__]
            outcomes.append(ShardOutcome(shard, error=last[0], logs=logs))
    return outcomes


def failed_shards_message(what: str, outcomes: Sequence[ShardOutcome], total: int,
                          rerun: str) -> str:
    """One message naming each failed shard, its error and its logs, and how to resume."""
    bad = [o for o in outcomes if o.error is not None]
    lines = [f"{what}: {len(bad)} of {total} shard(s) failed; finished shards are kept."]
    for o in bad:
        logs = f" (logs: {', '.join(o.logs)})" if o.logs else ""
        lines.append(f"  shard {o.shard}/{total}: {o.error}{logs}")
    lines.append(f"Fix: see the logs, then rerun {rerun}: finished shards are skipped.")
    return "\n".join(lines)


def srun_train_command(prepared: str | Path, run: str | Path, *, nodes: int,
                       gpus_per_node: int, config: str = "tsan",
                       partition: str | None = None, time: str | None = None,
                       extra_set: Sequence[str] = ()) -> list[str]:
    """The ``srun`` line that trains on `nodes` x `gpus_per_node` GPUs with Lightning DDP.

    srun starts one task per GPU; Lightning's ``SLURMEnvironment`` reads the ranks from
    SLURM's variables, so ``num_nodes`` and ``devices`` must match ``--nodes`` and
    ``--ntasks-per-node``.

    Raises:
        InputError: `nodes` or `gpus_per_node` below 1.
    """
    nodes = positive_int(nodes, "nodes")
    gpus = positive_int(gpus_per_node, "gpus_per_node")
    cmd = ["srun", f"--nodes={nodes}", f"--ntasks-per-node={gpus}", f"--gpus-per-node={gpus}"]
    if partition:
        cmd.append(f"--partition={partition}")
    if time:
        cmd.append(f"--time={time}")
    cmd += ["brainage", "train", str(prepared), str(run), "-c", config]
    for setting in ("accelerator=gpu", f"devices={gpus}", f"num_nodes={nodes}",
                    "strategy=ddp", *extra_set):
        cmd += ["--set", setting]
    return cmd


def shell_line(cmd: Sequence[str]) -> str:
    """`cmd` quoted for a shell."""
    return shlex.join(list(cmd))
