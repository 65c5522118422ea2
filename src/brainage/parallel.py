"""Many scans in worker processes: the one pool every scan-handling command uses.

``prepare``, ``predict`` (raw scans, DICOM, prepared arrays), ``explain`` and the BIDS App
participant level all run their scans through :func:`run_tasks`:

- ``jobs`` worker processes (a ``spawn`` context: fresh processes, so ITK reads its thread
  count when it first starts); one job runs in this process, with no pool.
- Each worker is set up once by an initializer: its thread counts (ITK single-threaded by
  default, so results are bit-identical to one job) and its *state*, e.g. the loaded
  ``Predictor``, built by ``setup(*setup_args)`` (a model is loaded, or unpickled, once per
  worker, not once per scan).
- A task's function is called as ``fn(state, task)`` and its result comes back with the
  task's position; results arrive as tasks finish (callers put them back in order).
- A worker process that dies (a crash in native code) fails its task, not the run:
  ``on_crash(task, exc)`` makes that task's result.
- Ctrl-C: workers ignore SIGINT; the parent stops handing out tasks, ends the workers and
  re-raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

from brainage.errors import InputError

#: State of this worker process (set once by the initializer).
_STATE: dict[str, Any] = {}


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask; else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def resolve_jobs(jobs: int | None, tasks: int) -> int:
    """Worker processes to use: `jobs` (None: every core), at most one per task, at least 1.

    Raises:
        InputError: `jobs` below 1.
    """
    if jobs is not None and int(jobs) < 1:
        raise InputError(f"--jobs {jobs}: expected 1 or more worker processes. Fix: give "
                         "--jobs 1 (one process) or more; leave it out to use every core.")
    wanted = available_cores() if jobs is None else int(jobs)
    return max(1, min(wanted, tasks))


def resolve_threads(threads: int | None, jobs: int) -> int:
    """Torch/OpenMP threads per worker: `threads`, else the cores shared among the jobs."""
    return int(threads) if threads else max(1, available_cores() // max(1, jobs))


def identity(obj: Any) -> Any:
    """A `setup` that takes the worker state as it is (pickled once per worker)."""
    return obj


def set_worker_threads(threads: int, itk_threads: int = 1) -> None:
    """Thread counts of this process (ITK reads its count when it first starts, OpenBLAS
    when numpy loads: the variables are set before this imports numpy)."""
    import sys

    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(itk_threads)))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, int(threads))))
    if "torch" in sys.modules:  # torch reads OMP_NUM_THREADS only when it first loads
        sys.modules["torch"].set_num_threads(max(1, int(threads)))


def _init(threads: int, itk_threads: int, setup: Callable[..., Any] | None,
          setup_args: tuple[Any, ...]) -> None:
    """Thread counts, then the state. ITK starts only when a scan is worked on, so its
    count holds; torch's is set here; OpenBLAS sized its pool when `setup_args` loaded
    (a predictor's arrays), which matters little: the pipeline barely uses BLAS."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    set_worker_threads(threads, itk_threads)
    _STATE["state"] = setup(*setup_args) if setup is not None else None


def _call(fn: Callable[[Any, Any], Any], task: Any) -> Any:
    return fn(_STATE.get("state"), task)


def run_tasks(
    fn: Callable[[Any, Any], Any], tasks: Sequence[Any], *, jobs: int = 1,
    setup: Callable[..., Any] | None = None, setup_args: tuple[Any, ...] = (),
    threads: int | None = None, itk_threads: int = 1,
    on_crash: Callable[[Any, BaseException], Any] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, fn(state, task))`` for every task, as tasks finish.

    Args:
        fn: A module-level function ``fn(state, task)`` (picklable by reference).
        tasks: The tasks (picklable).
        jobs: Worker processes; 1 runs the tasks in this process, in order.
        setup: Module-level function building each worker's state from `setup_args`
            (None: the state is None).
        setup_args: Its arguments (pickled once per worker).
        threads: Torch/OpenMP threads per worker (default: cores / jobs; one job in this
            process keeps this process's count unless given).
        itk_threads: ITK threads per worker; 1 keeps results bit-identical to one job.
        on_crash: Makes the result of a task whose worker process died; default: raise.
            Other exceptions of `fn` are raised here, as with one job.
    """
    jobs = max(1, min(int(jobs), len(tasks) or 1))
    n_threads = resolve_threads(threads, jobs)
    if jobs == 1:  # this process: its thread counts change only when asked to
        if threads is not None or itk_threads != 1:
            set_worker_threads(n_threads, itk_threads)
        state = setup(*setup_args) if setup is not None else None
        for i, task in enumerate(tasks):
            yield i, fn(state, task)
        return
    yield from _pool(fn, tasks, jobs, (n_threads, itk_threads, setup, setup_args), on_crash)


def _pool(fn: Callable[[Any, Any], Any], tasks: Sequence[Any], jobs: int,
          initargs: tuple[Any, ...], on_crash: Callable[[Any, BaseException], Any] | None
          ) -> Iterator[tuple[int, Any]]:
    ctx = get_context("spawn")  # fresh workers: ITK reads its thread count at start
    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=initargs)
    try:
        futures: dict[Future[Any], int] = {
            pool.submit(_call, fn, task): i for i, task in enumerate(tasks)}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                result = fut.result()
            except BrokenProcessPool as exc:  # a worker died (e.g. a crash in native code)
                if on_crash is None:
                    raise
                result = on_crash(tasks[i], exc)
            yield i, result
    except KeyboardInterrupt:
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a scan in progress has written nothing final
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
