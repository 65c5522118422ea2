"""One scan's work in a ``prepare`` run, in-process or in spawned worker processes.

Each scan is locked while it is prepared (:mod:`brainage.locks`, one lock file per scan
under ``cache/locks/``), so two ``prepare`` processes on the same folder (array jobs with
overlapping selections, an accidental double start) never prepare the same scan: the
second one skips it and says who is on it. The kernel drops the lock of a killed process.

Scans run in the worker processes of :mod:`brainage.parallel` (the pool every scan command
shares). Ctrl-C: workers ignore SIGINT; the parent stops handing out scans, ends the workers
and re-raises, so the runner can rebuild the index and print one line. A scan in progress
writes nothing (files are atomic, the record last), so it is redone on the next run.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from brainage import locks
from brainage.errors import BrainAgeError, InputError, one_line
from brainage.preprocessing import derivatives
from brainage.preprocessing.cache import CacheStore, ScanKey
from brainage.preprocessing.spec import PreprocessingSpec

#: Per-scan lock files, under the output folder.
LOCKS = Path("cache") / "locks"
#: Statuses of a scan this process did not prepare (no record written).
BUSY, DONE_ELSEWHERE = "busy", "done_elsewhere"


def _record(task: dict[str, Any], key: ScanKey, spec: PreprocessingSpec) -> dict[str, Any]:
    return {**{k: task[k] for k in ("participant_id", "session", "run")}, "scan": key.stem,
            "source": task["path"], "spec_hash": spec.hash}


def process_scan(root: str, spec_dict: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """Preprocess one scan and write its array, derivatives and record; never raises.

    Returns:
        The scan's record (status ``ok`` or ``failed``, error, flags, paths, QC), or, when
        another process holds the scan's lock or finished it meanwhile, a record with
        status ``busy`` (and ``holder``) or ``done_elsewhere`` that is not written.
    """
    spec = PreprocessingSpec.from_dict(spec_dict)
    store = CacheStore(root, spec)
    key = ScanKey(task["participant_id"], task["session"], task["run"])
    record = _record(task, key, spec)
    lock = locks.try_lock(Path(root) / LOCKS / f"{key.stem}.lock")
    if lock is None:
        return {**record, "status": BUSY, "holder": locks.holder(
            Path(root) / LOCKS / f"{key.stem}.lock")}
    with lock:
        if store.is_done(key):  # the other process finished it between our check and lock
            return {**record, "status": DONE_ELSEWHERE}
        record["itk_threads"] = int(os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", 0))
        try:
            record.update(_prepare_one(store, key, task["path"], task.get("dicom_series")))
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


def _prepare_one(store: CacheStore, key: ScanKey, path: str, series: str | None = None
                 ) -> dict[str, Any]:
    from brainage.data.dicom import scan_source
    from brainage.preprocessing.pipeline import preprocess

    if path.endswith(".npy"):
        raise InputError(
            f"{path}: already a preprocessed array; `brainage prepare` needs raw NIfTI scans. "
            "Fix: use the arrays directly for training, or give the raw T1w images."
        )
    result = preprocess(scan_source(path, series), store.spec, name=f"{key.stem} ({path})")
    array = store.write_array(key, result.array)
    files = derivatives.write_scan(store.root, key, store.spec, result.array, result.mask,
                                   result.qc, path, tissues=result.tissues)
    out = {"status": "ok", "error": None, "flags": result.qc["flags"],
           "array": str(array.relative_to(store.root)), "preproc": files["preproc"],
           "mask": files["mask"], "qc": result.qc}
    if result.tissues is not None:
        out["tissues"] = str(store.write_tissues(key, result.tissues).relative_to(store.root))
        out["affine_det"] = result.qc["affine_det"]  # modulates the tissue maps
    return out


def init_worker(threads: int, itk_threads: int = 1) -> None:
    """Thread counts of this process (ITK reads its count when it first starts)."""
    from brainage.parallel import set_worker_threads

    set_worker_threads(threads, itk_threads)


def _scan_task(state: tuple[str, dict[str, Any]], task: dict[str, Any]) -> dict[str, Any]:
    return process_scan(state[0], state[1], task)


def execute(
    root: str, spec_dict: dict[str, Any], tasks: list[dict[str, Any]], jobs: int,
    threads: int, progress: Any, itk_threads: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yield each task's record as it finishes (in-process for one job; worker processes
    of :func:`brainage.parallel.run_tasks` otherwise).

    Args:
        progress: A :class:`brainage.progress.Progress` to update, or None.
    """
    from brainage.parallel import identity, run_tasks

    def crashed(task: dict[str, Any], exc: BaseException) -> dict[str, Any]:
        return _crash_record(root, spec_dict, task, exc)

    for _, record in run_tasks(_scan_task, tasks, jobs=jobs, setup=identity,
                               setup_args=((root, spec_dict),), threads=threads,
                               itk_threads=itk_threads, on_crash=crashed):
        if progress is not None:
            progress.update(STATUS.get(record["status"], "done"))
        yield record


#: Progress status of each record status.
STATUS = {"ok": "done", "failed": "failed", BUSY: "skipped", DONE_ELSEWHERE: "skipped"}


def _crash_record(root: str, spec_dict: dict[str, Any], task: dict[str, Any],
                  exc: BaseException) -> dict[str, Any]:
    """A failed record for a scan whose worker process itself died (written, like any)."""
    spec = PreprocessingSpec.from_dict(spec_dict)
    key = ScanKey(task["participant_id"], task["session"], task["run"])
    record = {**_record(task, key, spec), "status": "failed", "flags": [],
              "error": f"worker process failed ({type(exc).__name__}: {one_line(exc)}); "
                       "rerun to retry"}
    CacheStore(root, spec).write_record(key, record)
    return record
