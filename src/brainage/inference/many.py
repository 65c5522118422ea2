"""Many scans through one :class:`~brainage.inference.predictor.Predictor`, in parallel.

Raw scans (NIfTI, DICOM folders, a raw cohort) go one scan per task: each worker process
preprocesses its scan with the run's spec (single-threaded ITK) and predicts it, so only
the output row comes back, whatever the number of scans. Prepared arrays (a fraction of a
second each) go in chunks of :data:`CHUNK_BATCHES` batches, so a few dozen stay in this
process and the networks see the batches they would see in one process. Tasks are the same
whatever ``jobs`` is, so the predictions are bit-identical to ``jobs=1``
(:mod:`brainage.parallel`: the predictor is sent once to each worker, not once per scan).

A scan that fails is a row with its ``error``; the others go on. Warnings of the workers
are raised again here, once each.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from brainage.errors import BrainAgeError
from brainage.inference import outputs
from brainage.parallel import identity, resolve_jobs, run_tasks
from brainage.progress import Progress, ProgressArg

#: Prepared scans per task, in batches of the predictor's ``batch_size``.
CHUNK_BATCHES = 8


def shard_rows(n_rows: int, shard: tuple[int, int] | None, unit: int = 1) -> slice:
    """Rows of shard ``(k, N)`` (1-based) of `n_rows`: the k-th of N contiguous blocks of
    whole `unit`-row chunks, so shards 1..N one after the other are the rows in order."""
    if shard is None:
        return slice(0, n_rows)
    k, n = shard
    units = -(-n_rows // max(1, unit))
    start, stop = (k - 1) * units // n, k * units // n
    return slice(min(n_rows, start * unit), min(n_rows, stop * unit))


def predict_raw(predictor: Any, table: pd.DataFrame, *, jobs: int | None = 1,
                progress: ProgressArg = False, threads: int | None = None,
                shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """Preprocess and predict every row of `table` (raw ``path``), one scan per task.

    `shard` ``(k, N)``: only the k-th of N contiguous blocks of rows (a job of an array;
    :mod:`brainage.inference.sharded` merges them). A shard whose scans all fail is rows
    with their errors, not an error (the merge decides).

    Returns:
        The output table in input order; failed scans are rows with their ``error``.

    Raises:
        BrainAgeError: no scan could be preprocessed (every reason listed).
    """
    data = table.reset_index(drop=True)
    if shard is not None:
        data = data.iloc[shard_rows(len(data), shard)].reset_index(drop=True)
        if data.empty:
            return pd.DataFrame()
    tasks = [data.iloc[[i]] for i in range(len(data))]
    frames = _run(_raw_task, predictor, tasks, jobs, progress, threads, "predict",
                  [1] * len(tasks))
    done = [f for f in frames if not _failed(f)]
    failed = [f for f in frames if _failed(f)]
    if failed:
        listing = "; ".join(f"{data['path'].iloc[int(f.index[0])]}: {f['error'].iloc[0]}"
                            for f in failed)
        if not done and shard is None:
            raise BrainAgeError(f"no input scan could be preprocessed: {listing}")
        warnings.warn(f"{len(failed)} of {len(data)} scan(s) not predicted: {listing}",
                      outputs.NoteWarning, stacklevel=3)
    predicted = concat(done)
    rows = pd.concat(failed, sort=False) if failed else predicted.iloc[:0]
    out = outputs.with_failures(predicted, rows).sort_index(kind="stable")
    return fill_age_sources(out.reset_index(drop=True))


def fill_age_sources(out: pd.DataFrame) -> pd.DataFrame:
    """``age_source`` of every row once any row has one: a scan alone did not know that
    another was a DICOM folder, so its NIfTI row lacks it. Such a row's age can only come
    from the table (or there is none), as :func:`~brainage.data.scans.with_header_demographics`
    says for NIfTI rows of a cohort with DICOM folders."""
    from brainage.data.scans import AGE_SOURCE, FROM_TABLE, NO_AGE

    if AGE_SOURCE not in out or not out[AGE_SOURCE].isna().any():
        return out
    missing = out[AGE_SOURCE].isna()
    known = out["age"].notna() if "age" in out else pd.Series(False, index=out.index)
    out.loc[missing, AGE_SOURCE] = [FROM_TABLE if k else NO_AGE for k in known[missing]]
    return out


def predict_table(predictor: Any, table: pd.DataFrame, *, jobs: int | None = 1,
                  progress: ProgressArg = False, threads: int | None = None,
                  shard: tuple[int, int] | None = None) -> pd.DataFrame:
    """Prepared rows through the predictor (its ``_predict_table``), in chunks of :data:`CHUNK_BATCHES`
    batches; `shard` ``(k, N)``: only the k-th of N blocks of whole chunks (the networks see
    the batches they see in one process)."""
    data = table.reset_index(drop=True)
    size = max(1, int(predictor.batch_size)) * CHUNK_BATCHES
    if shard is not None:
        data = data.iloc[shard_rows(len(data), shard, size)].reset_index(drop=True)
        if data.empty:
            return pd.DataFrame()
    tasks = [data.iloc[i:i + size] for i in range(0, len(data), size)]
    if len(tasks) <= 1 and not progress:  # one chunk: no pool, nothing to report
        return predictor._predict_table(data)
    frames = _run(_table_task, predictor, tasks, jobs, progress, threads, "predict",
                  [len(t) for t in tasks])
    return concat(frames).reset_index(drop=True)


def _run(fn: Any, predictor: Any, tasks: list[pd.DataFrame], jobs: int | None,
         progress: ProgressArg, threads: int | None, desc: str, sizes: list[int]
         ) -> list[pd.DataFrame]:
    """Each task's output frame, in task order; worker warnings raised again once each."""
    bar = Progress(sum(sizes), desc, progress)
    frames: list[pd.DataFrame | None] = [None] * len(tasks)
    seen: set[tuple[type[Warning], str]] = set()
    try:
        for i, (frame, caught) in run_tasks(
                fn, tasks, jobs=resolve_jobs(jobs, len(tasks)), setup=identity,
                setup_args=(predictor,), threads=threads, on_crash=_crashed):
            frames[i] = frame
            for category, message in caught:
                if (category, message) not in seen:
                    seen.add((category, message))
                    warnings.warn(message, category, stacklevel=4)
            failed = frame["error"].notna() if "error" in frame else [False] * len(frame)
            for bad in failed:
                bar.update("failed" if bad else "done")
    except KeyboardInterrupt:
        bar.close(print_summary=False)
        raise
    bar.close()
    return [f for f in frames if f is not None]


def _caught(fn: Any, *args: Any) -> tuple[pd.DataFrame, list[tuple[type[Warning], str]]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = fn(*args)
    return frame, [(w.category, str(w.message)) for w in caught]


def _raw_task(predictor: Any, row: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    """One raw scan (a one-row table) -> its output row, index = its input position."""
    position = row.index
    frame, caught = _caught(predictor._predict_raw_now, row.reset_index(drop=True), True)
    return frame.set_axis(position), caught


def _table_task(predictor: Any, chunk: pd.DataFrame) -> tuple[pd.DataFrame, list[Any]]:
    position = chunk.index
    frame, caught = _caught(predictor._predict_table, chunk.reset_index(drop=True))
    return frame.set_axis(position), caught


def _crashed(task: pd.DataFrame, exc: BaseException) -> tuple[pd.DataFrame, list[Any]]:
    """Failure rows for the scans of a task whose worker process died."""
    why = f"worker process failed ({type(exc).__name__}: {exc}); rerun to retry"
    return outputs.failure_rows(task, [why] * len(task)), []


def _failed(frame: pd.DataFrame) -> bool:
    return "error" in frame and bool(frame["error"].notna().any())


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames one under the other; columns in the order the frames give them (a column
    only some frames have, e.g. ``corrected_age`` of scans with an age, keeps its place)."""
    if not frames:
        return pd.DataFrame()
    order: list[str] = []
    for frame in frames:
        for j, col in enumerate(frame.columns):
            if col not in order:
                before = [c for c in frame.columns[:j] if c in order]
                order.insert(order.index(before[-1]) + 1 if before else 0, col)
    out = pd.concat(frames, sort=False)
    return out[order]
