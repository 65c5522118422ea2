"""``prepare`` as a job array: N shards, each ``prepare --shard k/N``, then one index.

Every shard job runs :func:`~brainage.preprocessing.runner.run_cohort` with ``shard=(k, N)``
into the same folder (a lock per scan, as for a hand-written array job); the index is then
rebuilt once from every scan's record. Finished scans are skipped, so rerunning the same
command resumes: only what is left is prepared. Job files and logs go to ``OUT.shards/``
next to the prepared folder (removed when every shard succeeded).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainage.cluster import ShardsFailed, failed_shards_message, make_executor, run_array
from brainage.cluster.profile import ClusterProfile
from brainage.data.cohort import Cohort
from brainage.errors import InputError
from brainage.preprocessing.cache import CacheStore
from brainage.preprocessing.runner import RunSummary, run_cohort, select_scans
from brainage.preprocessing.spec import PreprocessingSpec


@dataclass(frozen=True)
class PrepareShard:
    """Everything one shard job needs (pickled into the job)."""

    cohort: Cohort
    out: str
    spec: PreprocessingSpec
    shard: int
    shards: int
    participant_labels: tuple[str, ...] | None
    jobs: int | None
    threads: int | None
    itk_threads: int


def run_shard(job: PrepareShard) -> RunSummary:
    """One shard job: ``prepare --shard k/N`` (log lines, not a bar)."""
    return run_cohort(job.cohort, job.out, job.spec, jobs=job.jobs,
                      shard=(job.shard, job.shards),
                      participant_labels=list(job.participant_labels or []) or None,
                      threads=job.threads, itk_threads=job.itk_threads, progress="lines")


def log_folder(out: str | Path) -> Path:
    """Where the shard jobs' files and logs go: ``OUT.shards/`` next to `out`."""
    root = Path(out)
    return root.with_name(f"{root.name}.shards")


def prepare_sharded(cohort: Cohort, out: str | Path, spec: PreprocessingSpec, *, shards: int,
                    executor: str, profile: ClusterProfile,
                    participant_labels: list[str] | None = None, jobs: int | None = None,
                    threads: int | None = None, itk_threads: int = 1) -> RunSummary:
    """Prepare `cohort` into `out` as `shards` jobs of `executor`, then build one index.

    Shards never outnumber the selected participants (a shard holds whole participants).

    Returns:
        The shards' summaries added up.

    Raises:
        InputError: `shards` below 1, or a bad selection.
        ShardsFailed: some shard jobs failed (named, with their logs); the index holds
            what finished, and the same command resumes.
    """
    if isinstance(shards, bool) or int(shards) < 1:
        raise InputError(f"--shards {shards}: expected 1 or more. Fix: give e.g. --shards 8.")
    rows = select_scans(cohort, participant_labels)  # refuses unknown labels before submitting
    store = CacheStore(Path(out), spec)
    store.prepare()  # refuses a folder of another spec before submitting
    n = max(1, min(int(shards), rows["participant_id"].nunique()))
    todo = [PrepareShard(cohort, str(out), spec, k, n,
                         tuple(participant_labels) if participant_labels else None,
                         jobs, threads, itk_threads) for k in range(1, n + 1)]
    folder = log_folder(out)
    ex = make_executor(executor, folder, profile, name="brainage-prepare")
    outcomes = run_array(ex, run_shard, todo, [j.shard for j in todo])
    store.build_index()
    summary = combine([o.result for o in outcomes if o.error is None], Path(out), spec.hash)
    if any(o.error for o in outcomes):
        raise ShardsFailed(failed_shards_message("prepare", outcomes, n, "the same command")
                           + "\n" + summary.format())
    shutil.rmtree(folder, ignore_errors=True)
    return summary


def combine(parts: list[Any], out: Path, spec_hash: str) -> RunSummary:
    """One summary of the shards' summaries."""
    total = RunSummary(out=out, spec_hash=spec_hash)
    for part in parts:
        total.total += part.total
        total.processed += part.processed
        total.skipped += part.skipped
        total.failed += part.failed
        total.flagged += part.flagged
        total.busy += part.busy
    return total
