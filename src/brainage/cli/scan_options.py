"""The options every many-scan command shares: ``--jobs`` and ``--progress/--no-progress``.

Light on purpose (``brainage --help`` imports it): see :mod:`brainage.parallel` for the
workers and :mod:`brainage.progress` for what is printed.
"""

from __future__ import annotations

import typer

JOBS_HELP = ("Scans processed in parallel, in worker processes (default: every core). Each "
             "worker runs ITK single-threaded, so results are bit-identical to --jobs 1.")


def jobs_option() -> object:
    """``--jobs/-j N`` (None: every core this process may use)."""
    return typer.Option(None, "--jobs", "-j", min=1, help=JOBS_HELP)


def progress_option() -> object:
    """``--progress/--no-progress``."""
    return typer.Option(
        True, "--progress/--no-progress", help="A progress bar on stderr (scans done/total, "
        "s/scan, ETA) when it is a terminal; --no-progress, or stderr not a terminal: one "
        "log line every few scans instead. A summary line ends every run.")


def progress_arg(progress: bool) -> bool | str:
    """The ``progress`` argument of the API for the flag: a bar, or log lines only."""
    return True if progress else "lines"


def executor_option() -> object:
    """``--executor local|slurm`` (None: this process and its --jobs workers)."""
    return typer.Option(
        None, "--executor", help="Run the scans as a job array of --shards shards through "
        "submitit, then merge: slurm (sbatch; --partition, --array-parallelism, --cluster) or "
        "local (subprocesses here). Default: this process, with --jobs workers.")


def shards_option() -> object:
    return typer.Option(None, "--shards", min=1, help="Shards (jobs of the array) with "
                        "--executor; each runs --shard k/N. Required with --executor.")


def partition_option() -> object:
    return typer.Option(None, "--partition", help="SLURM partition (overrides --cluster's).")


def array_parallelism_option() -> object:
    return typer.Option(None, "--array-parallelism", min=1,
                        help="Shards running at once (overrides --cluster's; default 64).")


def cluster_option() -> object:
    return typer.Option(
        None, "--cluster", help="YAML cluster profile: partition, time, mem, cpus_per_task, "
        "gpus_per_node, array_parallelism, account, qos, setup, extra (README, Scaling).")


def scale_out(executor: str | None, shards: int | None, partition: str | None,
              array_parallelism: int | None, cluster: object, jobs: int | None
              ) -> tuple[str, object, int] | None:
    """``(executor, profile, shards)`` from the scale-out options, or None without
    ``--executor``.

    Raises:
        BrainAgeError: a scale-out option without --executor, no --shards, a bad profile.
    """
    from brainage.cluster import EXECUTORS
    from brainage.cluster.profile import ClusterProfile, load_profile, with_options
    from brainage.errors import InputError

    if executor is None:
        given = [name for name, value in (("--shards", shards), ("--partition", partition),
                 ("--array-parallelism", array_parallelism), ("--cluster", cluster))
                 if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} given without --executor. Fix: add "
                             "--executor slurm (or local), or drop them.")
        return None
    if executor not in EXECUTORS:
        raise InputError(f"--executor {executor!r}: expected local or slurm. Fix: --executor "
                         "slurm on a cluster's login node, --executor local on this machine.")
    if shards is None:
        raise InputError(f"--executor {executor} needs --shards N (jobs in the array). Fix: "
                         "add e.g. --shards 8.")
    profile = load_profile(cluster) if cluster is not None else ClusterProfile()  # type: ignore[arg-type]
    profile = with_options(profile, partition=partition, array_parallelism=array_parallelism,
                           cpus_per_task=jobs)
    return executor, profile, shards
