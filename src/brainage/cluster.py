"""Scale-out through submitit: cluster profiles, executors, shard arrays, srun lines.

``prepare`` and ``predict`` split their scans into N shards (the same selection as
``--shard k/N`` in one process) and submit them as one job array:

- ``--executor slurm``: a SLURM array (:class:`submitit.AutoExecutor` with
  ``cluster="slurm"``), with the partition, time, memory, cores and array parallelism of
  the command line or of a YAML cluster profile (:func:`load_profile`);
- ``--executor local``: the same jobs as local subprocesses (submitit's LocalExecutor);
- ``debug`` (tests only): in this process (submitit's DebugExecutor).

:func:`run_array` submits, waits and returns each shard's result or the reason it failed,
with the shard's log files. Training at scale stays on Lightning DDP:
:func:`srun_train_command` writes the ``srun`` line (README, Scaling).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from brainage.errors import BrainAgeError, InputError, NotFoundError

#: Executors a command accepts (``debug`` runs in this process; meant for tests).
EXECUTORS = ("local", "slurm", "debug")

_TIME = re.compile(r"^(?:(?P<d>\d+)-)?(?:(?P<h>\d+):)?(?P<m>\d+)(?::(?P<s>\d+))?$")
_MEM = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<u>[KMGT]?)B?$", re.IGNORECASE)


@dataclass(frozen=True)
class ClusterProfile:
    """Where and how shard jobs run (a YAML cluster profile; every key optional).

    Attributes:
        partition: SLURM partition (``--partition``).
        time: Wall-time limit per shard in minutes (YAML: minutes, or SLURM's
            ``HH:MM:SS`` / ``D-HH:MM:SS``).
        mem: Memory per shard in GB (YAML: a number of GB, or ``16G``, ``4000M``).
        cpus_per_task: Cores per shard; the shard's ``--jobs`` default.
        gpus_per_node: GPUs per shard (``predict`` of a network on GPU nodes).
        array_parallelism: Shards running at once (``%K`` of ``--array``).
        account: SLURM account (``--account``).
        qos: SLURM quality of service (``--qos``).
        setup: Shell lines run before each shard (``module load ...``, ``source venv``).
        extra: Any other sbatch option, e.g. ``{constraint: avx2, exclusive: true}``.
    """

    partition: str | None = None
    time: int = 240
    mem: float = 8.0
    cpus_per_task: int = 2
    gpus_per_node: int = 0
    array_parallelism: int = 64
    account: str | None = None
    qos: str | None = None
    setup: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def _where(source: str, key: str) -> str:
    return f"{source}: {key!r}"


def parse_minutes(value: Any, where: str = "time") -> int:
    """Minutes from ``90``, ``"90"``, ``"01:30:00"``, ``"1-00:00:00"`` (SLURM forms).

    Raises:
        InputError: anything else, naming `where`.
    """
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, int | float) and value > 0:
        return int(value)
    match = _TIME.match(str(value).strip())
    if match is None or isinstance(value, int | float):
        raise InputError(f"{where} = {value!r}: expected minutes (e.g. 240) or SLURM time "
                         "HH:MM:SS or D-HH:MM:SS. Fix: write e.g. time: 04:00:00.")
    d, h, m, s = (int(match.group(k) or 0) for k in "dhms")
    if match.group("d") is None and match.group("s") is None and match.group("h") is not None:
        h, m, s = 0, h, m  # SLURM reads "MM:SS" without a day, "HH:MM" after one
    minutes = d * 1440 + h * 60 + m + (1 if s else 0)
    if minutes < 1:
        raise InputError(f"{where} = {value!r}: expected at least one minute. Fix: give a "
                         "longer time.")
    return minutes


def parse_gb(value: Any, where: str = "mem") -> float:
    """GB from ``16``, ``"16G"``, ``"16GB"``, ``"4000M"``, ``"1T"``.

    Raises:
        InputError: anything else, naming `where`.
    """
    match = None if isinstance(value, bool) else _MEM.match(str(value).strip())
    if match is None or float(match.group("n")) <= 0:
        raise InputError(f"{where} = {value!r}: expected memory in GB (e.g. 16) or with a "
                         "unit (16G, 4000M). Fix: write e.g. mem: 16G.")
    scale = {"": 1.0, "K": 1 / 1024**2, "M": 1 / 1024, "G": 1.0, "T": 1024.0}
    return float(match.group("n")) * scale[match.group("u").upper()]


def _positive_int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{where} = {value!r}: expected a whole number >= {minimum}. Fix: "
                         f"write e.g. {max(minimum, 4)}.")
    return value


def profile_from_dict(data: Any, source: str = "cluster profile") -> ClusterProfile:
    """Validate a profile mapping (every problem names its key and the fix).

    Raises:
        InputError: not a mapping, an unknown key, or a bad value.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of keys (partition, time, mem, ...), "
                         f"got {type(data).__name__}. Fix: write one 'key: value' per line.")
    known = [f.name for f in fields(ClusterProfile)]
    unknown = sorted(set(map(str, data)) - set(known))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(map(repr, unknown))}; expected "
                         f"{', '.join(known)}. Fix: other sbatch options go under 'extra:'.")
    out: dict[str, Any] = {}
    for key, value in data.items():
        where = _where(source, key)
        if key in ("partition", "account", "qos"):
            if not isinstance(value, str) or not value.strip():
                raise InputError(f"{where} = {value!r}: expected a name. Fix: write e.g. "
                                 f"{key}: cpu, or leave the key out.")
            out[key] = value.strip()
        elif key == "time":
            out[key] = parse_minutes(value, where)
        elif key == "mem":
            out[key] = parse_gb(value, where)
        elif key in ("cpus_per_task", "array_parallelism"):
            out[key] = _positive_int(value, where)
        elif key == "gpus_per_node":
            out[key] = _positive_int(value, where, minimum=0)
        elif key == "setup":
            lines = [value] if isinstance(value, str) else value
            if not isinstance(lines, list) or not all(isinstance(s, str) for s in lines):
                raise InputError(f"{where}: expected shell lines (a list of strings). Fix: "
                                 "write e.g. setup: [\"source ~/venv/bin/activate\"].")
            out[key] = tuple(lines)
        elif key == "extra":
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise InputError(f"{where}: expected a mapping of sbatch options. Fix: write "
                                 "e.g. extra: {constraint: avx2}.")
            out[key] = dict(value)
    return ClusterProfile(**out)


def load_profile(path: str | Path) -> ClusterProfile:
    """Read and validate a YAML cluster profile.

    Raises:
        NotFoundError: no such file.
        InputError: not YAML, or a bad key or value (:func:`profile_from_dict`).
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise NotFoundError(f"cluster profile {file} not found. Fix: give the path of a YAML "
                            "file with keys such as partition, time, mem, cpus_per_task.")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"cluster profile {file} is not valid YAML ({exc}). Fix: correct "
                         "the file.") from exc
    return profile_from_dict(data, str(file))


def with_options(profile: ClusterProfile, *, partition: str | None = None,
                 array_parallelism: int | None = None, cpus_per_task: int | None = None
                 ) -> ClusterProfile:
    """`profile` with the command line's options (given ones win)."""
    from dataclasses import replace

    changes: dict[str, Any] = {}
    if partition:
        changes["partition"] = partition
    if array_parallelism is not None:
        changes["array_parallelism"] = _positive_int(array_parallelism, "--array-parallelism")
    if cpus_per_task is not None:
        changes["cpus_per_task"] = _positive_int(cpus_per_task, "--jobs")
    return replace(profile, **changes)


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
    nodes = _positive_int(nodes, "nodes")
    gpus = _positive_int(gpus_per_node, "gpus_per_node")
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
