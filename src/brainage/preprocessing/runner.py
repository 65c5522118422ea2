"""Run the preprocessing over a cohort: selection, shards, parallel workers, resume.

Each scan is independent: a worker preprocesses it, writes its cache array, its BIDS
derivatives and finally its record (:mod:`brainage.preprocessing.workers`). A failing scan
gets a record with its error and the others carry on. Finished scans (same spec) are
skipped, so an interrupted or partly failed run is resumed by running the same command
again; a scan another ``prepare`` process is working on is skipped and named.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.cohort import Cohort, bids_label
from brainage.data.dicom import series_text
from brainage.errors import InputError
from brainage.parallel import resolve_jobs, resolve_threads
from brainage.preprocessing import derivatives
from brainage.preprocessing.cache import CacheStore, ScanKey, key_of
from brainage.preprocessing.sidecars import write_table_sidecar
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.preprocessing.workers import BUSY, DONE_ELSEWHERE, execute
from brainage.progress import Progress, ProgressArg

#: The cohort the scans came from, written next to the outputs (read by training).
COHORT_FILE = "cohort.tsv"


@dataclass
class RunSummary:
    """What a cohort run did."""

    total: int = 0
    processed: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    flagged: list[tuple[str, list[str]]] = field(default_factory=list)
    busy: list[tuple[str, str]] = field(default_factory=list)
    out: Path | None = None
    spec_hash: str = ""

    def format(self) -> str:
        """A short report for the terminal."""
        elsewhere = f", {len(self.busy)} left to another process" if self.busy else ""
        lines = [
            f"prepared {self.processed} scan(s), skipped {self.skipped} finished, "
            f"{len(self.failed)} failed, {len(self.flagged)} flagged{elsewhere} "
            f"(of {self.total} selected); spec {self.spec_hash[:12]}",
        ]
        lines += [f"  failed  {scan}: {err}" for scan, err in self.failed]
        lines += [f"  flagged {scan}: {', '.join(fl)}" for scan, fl in self.flagged]
        lines += [f"  busy    {scan}: being prepared by {who}; rerun later to check it"
                  for scan, who in self.busy]
        if self.out is not None:
            lines.append(f"  index {self.out / 'index.tsv'}, QC table {self.out / 'qc.tsv'}")
        return "\n".join(lines)


class PrepareInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what was kept, and how to resume (the message is one line)."""

    def __init__(self, out: Path, summary: RunSummary, finished: int) -> None:
        self.out, self.summary, self.finished = out, summary, finished
        super().__init__(
            f"interrupted: kept {finished} finished scan(s) in {out} ({summary.processed} "
            f"from this run, index.tsv updated); a scan in progress was not kept. Resume by "
            "running the same command again: finished scans are skipped.")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``: shard i of N, 1 <= i <= N."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError as exc:
        raise InputError(
            f"--shard {text!r}: expected i/N, e.g. 1/4. Fix: write the shard as two integers "
            "separated by '/'."
        ) from exc
    if n < 1 or not 1 <= i <= n:
        raise InputError(
            f"--shard {text!r}: expected 1 <= i <= N. Fix: shards are numbered from 1 "
            "(with a 0-based array index use $((SLURM_ARRAY_TASK_ID + 1))/N)."
        )
    return i, n


def select_scans(
    cohort: Cohort, participant_labels: list[str] | None = None,
    shard: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Rows to process: the given participants (labels without ``sub-``), then shard i of N.

    Shards are round-robin over the sorted participant labels, so every scan of a subject
    lands in the same shard and each shard gets about the same number of subjects.

    Raises:
        BrainAgeError: a requested label is not in the cohort.
    """
    table = cohort.table
    labels = table["participant_id"].astype(str).map(bids_label)
    if participant_labels:
        wanted = [bids_label(str(lab).strip()) for lab in participant_labels]
        missing = sorted(set(wanted) - set(labels))
        if missing:
            raise InputError(
                f"--participant-label {', '.join(missing)} not in the cohort ({len(set(labels))} "
                "participants). Fix: give labels without 'sub-', as in the participant ids."
            )
        table, labels = table[labels.isin(wanted)], labels[labels.isin(wanted)]
    if shard is not None:
        i, n = shard
        mine = set(sorted(set(labels))[i - 1 :: n])
        table = table[labels.isin(mine)]
    return table.reset_index(drop=True)


def _task(row: pd.Series) -> dict[str, Any]:
    key = key_of(row)
    return {"participant_id": key.participant_id, "session": key.session, "run": key.run,
            "path": str(row["path"]), "dicom_series": series_text(row.get("dicom_series"))}


def _check_unique(rows: pd.DataFrame) -> list[ScanKey]:
    keys = [key_of(r) for _, r in rows.iterrows()]
    stems = pd.Series([k.stem for k in keys])
    dup = sorted(set(stems[stems.duplicated()]))
    if dup:
        raise InputError(
            f"scans {dup} appear more than once (same participant, session and run, after "
            "making labels alphanumeric). Fix: give them distinct sessions or runs."
        )
    return keys


def run_cohort(
    cohort: Cohort, out: str | Path, spec: PreprocessingSpec, *, jobs: int | None = 1,
    shard: tuple[int, int] | None = None, participant_labels: list[str] | None = None,
    threads: int | None = None, progress: ProgressArg = False, itk_threads: int = 1,
) -> RunSummary:
    """Preprocess every selected scan of `cohort` into `out` (cache + BIDS derivatives).

    Args:
        cohort: Scans to prepare (``path`` column: raw T1w NIfTI).
        out: Output folder; it holds outputs of one spec only.
        spec: The preprocessing spec.
        jobs: Parallel worker processes (None: every core; at most one per scan).
        shard: ``(i, N)``: process only shard i of N (1-based).
        participant_labels: Only these participants (labels without ``sub-``).
        threads: Torch/OpenMP threads per worker (default: CPU cores / jobs).
        progress: ``True``: a bar on a terminal, else log lines, then a summary line;
            ``"lines"``: never a bar; a callable ``fn(done, total)``; False: quiet
            (:mod:`brainage.progress`).
        itk_threads: ITK threads per worker. 1 (the default) makes outputs bit-identical
            from run to run; more is faster per scan but registration then varies slightly
            (see :data:`brainage.preprocessing.antsio.DETERMINISTIC_ITK_THREADS`).

    Raises:
        BrainAgeError: bad selection, duplicate scans, or `out` holds another spec.
        PrepareInterrupted: Ctrl-C; the index is rebuilt first, finished scans are kept.
    """
    rows = select_scans(cohort, participant_labels, shard)
    keys = _check_unique(rows)
    root = Path(out)
    store = CacheStore(root, spec)
    store.prepare()
    store.clean_stale()
    derivatives.write_dataset_files(root, spec, cohort.source)
    cohort.to_tsv(root / COHORT_FILE)  # ages, sex, site for training (brainage.preprocessing.prepared)
    write_table_sidecar(root / COHORT_FILE, cohort.table.columns)
    todo = [_task(r) for k, (_, r) in zip(keys, rows.iterrows(), strict=True)
            if not store.is_done(k)]
    summary = RunSummary(total=len(rows), skipped=len(rows) - len(todo), out=root,
                         spec_hash=spec.hash)
    jobs = resolve_jobs(jobs, len(todo))
    threads = resolve_threads(threads, jobs)
    bar = Progress(len(todo), "prepare", progress, skipped=summary.skipped)
    try:
        for rec in execute(str(root), spec.to_dict(), todo, jobs, threads, bar, itk_threads):
            _count(summary, rec)
    except KeyboardInterrupt as exc:
        bar.close(print_summary=False)  # the interrupted message says what was kept
        index = store.build_index()
        finished = int(((index["status"] == "ok") & (index["spec_hash"] == spec.hash)).sum())
        raise PrepareInterrupted(root, summary, finished) from exc
    bar.close()
    store.build_index()
    return summary


def _count(summary: RunSummary, rec: dict[str, Any]) -> None:
    if rec["status"] == BUSY:
        summary.busy.append((rec["scan"], rec["holder"]))
    elif rec["status"] == DONE_ELSEWHERE:
        summary.skipped += 1
    else:
        summary.processed += 1
        if rec["status"] != "ok":
            summary.failed.append((rec["scan"], rec["error"]))
        elif rec.get("flags"):
            summary.flagged.append((rec["scan"], list(rec["flags"])))
