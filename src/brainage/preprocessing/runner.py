"""Run the preprocessing over a cohort: selection, shards, parallel workers, resume.

Each scan is independent: a worker preprocesses it, writes its cache array, its BIDS
derivatives and finally its record. A failing scan gets a record with its error and the
others carry on. Finished scans (same spec) are skipped, so an interrupted or partly
failed run is resumed by running the same command again.
"""

from __future__ import annotations

import os
import traceback
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.cohort import Cohort, bids_label
from brainage.data.headers import one_line
from brainage.errors import BrainAgeError
from brainage.preprocessing import derivatives
from brainage.preprocessing.cache import CacheStore, ScanKey, key_of
from brainage.preprocessing.spec import PreprocessingSpec

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
    out: Path | None = None
    spec_hash: str = ""

    def format(self) -> str:
        """A short report for the terminal."""
        lines = [
            f"prepared {self.processed} scan(s), skipped {self.skipped} finished, "
            f"{len(self.failed)} failed, {len(self.flagged)} flagged "
            f"(of {self.total} selected); spec {self.spec_hash[:12]}",
        ]
        lines += [f"  failed  {scan}: {err}" for scan, err in self.failed]
        lines += [f"  flagged {scan}: {', '.join(fl)}" for scan, fl in self.flagged]
        if self.out is not None:
            lines.append(f"  index {self.out / 'index.tsv'}, QC table {self.out / 'qc.tsv'}")
        return "\n".join(lines)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> ``(2, 8)``: shard i of N, 1 <= i <= N."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError as exc:
        raise BrainAgeError(
            f"--shard {text!r}: expected i/N, e.g. 1/4. Fix: write the shard as two integers "
            "separated by '/'."
        ) from exc
    if n < 1 or not 1 <= i <= n:
        raise BrainAgeError(
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
            raise BrainAgeError(
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
            "path": str(row["path"])}


def process_scan(root: str, spec_dict: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """Preprocess one scan and write its array, derivatives and record; never raises.

    Returns:
        The scan's record (status ``ok`` or ``failed``, error, flags, paths, QC).
    """
    spec = PreprocessingSpec.from_dict(spec_dict)
    store = CacheStore(root, spec)
    key = ScanKey(task["participant_id"], task["session"], task["run"])
    record: dict[str, Any] = {**{k: task[k] for k in ("participant_id", "session", "run")},
                              "scan": key.stem, "source": task["path"], "spec_hash": spec.hash}
    try:
        record.update(_prepare_one(store, key, task["path"]))
    except Exception as exc:  # recorded per scan; the cohort run carries on
        user = isinstance(exc, BrainAgeError)
        record.update(status="failed", flags=[], error=error_text(exc),
                      traceback=None if user else traceback.format_exc(limit=8))
    store.write_record(key, record)
    return record


def error_text(exc: BaseException) -> str:
    """One line for the index and the terminal: the message of a BrainAgeError, else the
    exception's type and message (a bare ``MemoryError`` says it ran out of memory)."""
    if isinstance(exc, BrainAgeError):
        return one_line(exc)
    if isinstance(exc, MemoryError):
        return (f"MemoryError: out of memory {one_line(exc)}".rstrip() + ". Fix: free memory "
                "or run fewer --jobs; a scan that needs this much is probably damaged.")
    return f"{type(exc).__name__}: {one_line(exc)}"


def _prepare_one(store: CacheStore, key: ScanKey, path: str) -> dict[str, Any]:
    from brainage.preprocessing.pipeline import preprocess

    if path.endswith(".npy"):
        raise BrainAgeError(
            f"{path}: already a preprocessed array; `brainage prepare` needs raw NIfTI scans. "
            "Fix: use the arrays directly for training, or give the raw T1w images."
        )
    result = preprocess(path, store.spec, name=f"{key.stem} ({path})")
    array = store.write_array(key, result.array)
    files = derivatives.write_scan(store.root, key, store.spec, result.array, result.mask,
                                   result.qc, path)
    return {"status": "ok", "error": None, "flags": result.qc["flags"],
            "array": str(array.relative_to(store.root)), "preproc": files["preproc"],
            "mask": files["mask"], "qc": result.qc}


def _init_worker(threads: int) -> None:
    from brainage.preprocessing.antsio import set_threads

    set_threads(threads)


def _check_unique(rows: pd.DataFrame) -> list[ScanKey]:
    keys = [key_of(r) for _, r in rows.iterrows()]
    stems = pd.Series([k.stem for k in keys])
    dup = sorted(set(stems[stems.duplicated()]))
    if dup:
        raise BrainAgeError(
            f"scans {dup} appear more than once (same participant, session and run, after "
            "making labels alphanumeric). Fix: give them distinct sessions or runs."
        )
    return keys


def _execute(
    root: str, spec_dict: dict[str, Any], tasks: list[dict[str, Any]], jobs: int,
    threads: int, progress: bool,
) -> Any:
    """Yield each task's record as it finishes (in-process for one job)."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="prepare", unit="scan", disable=not progress)
    if jobs <= 1:
        _init_worker(threads)
        for task in tasks:
            yield process_scan(root, spec_dict, task)
            bar.update()
        bar.close()
        return
    ctx = get_context("spawn")  # fresh workers: ITK reads its thread count at start
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures: dict[Future[dict[str, Any]], dict[str, Any]] = {
            pool.submit(process_scan, root, spec_dict, t): t for t in tasks
        }
        for fut in as_completed(futures):
            yield _result_or_crash(root, spec_dict, futures[fut], fut)
            bar.update()
    bar.close()


def _result_or_crash(
    root: str, spec_dict: dict[str, Any], task: dict[str, Any], fut: Future[dict[str, Any]]
) -> dict[str, Any]:
    """The worker's record, or a failed record when the worker process itself died."""
    try:
        return fut.result()
    except Exception as exc:  # e.g. BrokenProcessPool after a crash in native code
        spec = PreprocessingSpec.from_dict(spec_dict)
        key = ScanKey(task["participant_id"], task["session"], task["run"])
        record = {**{k: task[k] for k in ("participant_id", "session", "run")},
                  "scan": key.stem, "source": task["path"], "spec_hash": spec.hash,
                  "status": "failed", "flags": [],
                  "error": f"worker process failed ({type(exc).__name__}: {exc}); rerun to retry"}
        CacheStore(root, spec).write_record(key, record)
        return record


def run_cohort(
    cohort: Cohort, out: str | Path, spec: PreprocessingSpec, *, jobs: int = 1,
    shard: tuple[int, int] | None = None, participant_labels: list[str] | None = None,
    threads: int | None = None, progress: bool = True,
) -> RunSummary:
    """Preprocess every selected scan of `cohort` into `out` (cache + BIDS derivatives).

    Args:
        cohort: Scans to prepare (``path`` column: raw T1w NIfTI).
        out: Output folder; it holds outputs of one spec only.
        spec: The preprocessing spec.
        jobs: Parallel worker processes.
        shard: ``(i, N)``: process only shard i of N (1-based).
        participant_labels: Only these participants (labels without ``sub-``).
        threads: ITK/torch threads per worker (default: CPU cores / jobs).
        progress: Show a progress bar.

    Raises:
        BrainAgeError: bad selection, duplicate scans, or `out` holds another spec.
    """
    rows = select_scans(cohort, participant_labels, shard)
    keys = _check_unique(rows)
    root = Path(out)
    store = CacheStore(root, spec)
    store.prepare()
    store.clean_stale()
    derivatives.write_dataset_description(root, spec, cohort.source)
    cohort.to_tsv(root / COHORT_FILE)  # ages, sex, site for training (brainage.data.prepared)
    todo = [_task(r) for k, (_, r) in zip(keys, rows.iterrows(), strict=True)
            if not store.is_done(k)]
    summary = RunSummary(total=len(rows), skipped=len(rows) - len(todo), out=root,
                         spec_hash=spec.hash)
    jobs = max(1, min(int(jobs), len(todo) or 1))
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    for rec in _execute(str(root), spec.to_dict(), todo, jobs, threads, progress):
        summary.processed += 1
        if rec["status"] != "ok":
            summary.failed.append((rec["scan"], rec["error"]))
        elif rec.get("flags"):
            summary.flagged.append((rec["scan"], list(rec["flags"])))
    store.build_index()
    return summary
