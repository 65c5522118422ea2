"""Cluster profiles: where and how shard jobs run (partition, time, memory, cores, ...),
read from YAML (:func:`load_profile`) and the command line (:func:`with_options`), every
bad key or value named with its fix (:mod:`brainage.cluster` submits with them)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from brainage.errors import InputError, NotFoundError

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


def positive_int(value: Any, where: str, minimum: int = 1) -> int:
    """`value` if it is a whole number >= `minimum`, else an InputError naming `where`."""
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
            out[key] = positive_int(value, where)
        elif key == "gpus_per_node":
            out[key] = positive_int(value, where, minimum=0)
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
        changes["array_parallelism"] = positive_int(array_parallelism, "--array-parallelism")
    if cpus_per_task is not None:
        changes["cpus_per_task"] = positive_int(cpus_per_task, "--jobs")
    return replace(profile, **changes)
