"""Raw scan -> age on real IXI scans: ``--jobs 1`` vs ``--jobs 2`` and a per-stage table.

Used by ``bench_predict.py --stages N`` (see its docstring). Three passes over the same N
scans, in one run so that the ratios compare like with like on a shared machine:

1. ``Predictor.predict(scans, jobs=1)`` in this process (what ``--jobs 1`` runs);
2. ``Predictor.predict(scans, jobs=2)``: two spawned workers, start-up included; the
   ratio of the two wall times is the throughput gain, and the two tables must be equal;
3. scan by scan in this process, each stage timed: read (the header: nibabel reads the
   data lazily), read data + reorient (the rest of the pipeline's ``load`` step: conform,
   head mask), then the pipeline's own step timers
   (N4, mask, registration, resample, tissue maps, QC, normalise), then features and model.

Peak RSS: this process's after pass 1 (one job; it also holds the run; ``VmHWM``) and each
worker's during pass 2: a thread reads the ``VmHWM`` of this process's children from
``/proc`` twice a second (``getrusage(RUSAGE_CHILDREN)`` would report at least this
process's size, which a child inherits through fork before it runs the worker).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "ixi-hh-2mm"
MAX_SCANS = 6
#: Stages in pipeline order: (label, key of the pipeline's ``seconds`` record or ours).
STAGES = [("read (header)", "read"), ("read data, reorient, head mask", "reorient"),
          ("N4", "n4"), ("mask (skull-strip)", "skullstrip"),
          ("registration (affine)", "register"), ("resample", "resample"),
          ("normalise", "normalise"), ("tissue maps", "tissues"), ("QC", "qc"),
          ("features", "features"), ("model (+OOD, bias, interval)", "model")]


def _hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set (``VmHWM``) of a process in MB, or 0 when it has ended."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class _ChildPeaks(threading.Thread):
    """Polls the peak RSS of every child of this process until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        me = os.getpid()
        while not self.stop.wait(0.5):
            for task in Path(f"/proc/{me}/task").iterdir():
                children = (task / "children").read_text().split()
                for pid in map(int, children):
                    self.peaks[pid] = max(self.peaks.get(pid, 0.0), _hwm_mb(pid))


def _scans(n: int) -> list[Path]:
    scans = sorted(DATA.glob("sub-*/anat/*_T1w.nii.gz"))[:n]
    if len(scans) < n:
        sys.exit(f"found {len(scans)} scans under {DATA}, wanted {n}")
    return scans


def _noop(state: Any, task: int) -> int:
    return task


def _startup_s(predictor: Any) -> float:
    """Seconds to start two workers and send each the predictor (no scan)."""
    from brainage.parallel import identity, run_tasks

    t0 = time.perf_counter()
    list(run_tasks(_noop, [0, 1], jobs=2, setup=identity, setup_args=(predictor,)))
    return time.perf_counter() - t0


def _timed_predict(predictor: Any, scans: list[Path], jobs: int) -> tuple[float, Any]:
    t0 = time.perf_counter()
    table = predictor.predict(scans, jobs=jobs)
    return time.perf_counter() - t0, table


def _stages_of(predictor: Any, scan: Path) -> dict[str, float]:
    """Seconds of each stage of one scan (see the module docstring)."""
    import pandas as pd

    from brainage.classical.model import ClassicalModel, feature_matrix
    from brainage.preprocessing import steps
    from brainage.preprocessing.pipeline import preprocess_scan

    t0 = time.perf_counter()
    steps.load_image(scan)
    read = time.perf_counter() - t0
    result = preprocess_scan(scan, predictor.spec)
    sec = dict(result.seconds)
    out = {"read": read, "reorient": max(0.0, sec.pop("load") - read), **sec}
    data = pd.DataFrame([{"participant_id": scan.name.split("_")[0], "array_path": result.array,
                          "tissue_path": result.tissues, "qc_flags": None,
                          "affine_det": result.qc.get("affine_det")}])
    classical = [m for m in predictor.stage1 if isinstance(m, ClassicalModel)]
    t0 = time.perf_counter()
    if classical:
        feature_matrix(classical[0].features, data)
    out["features"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    predictor.predict(data)  # makes the features again: counted once, under features
    out["model"] = max(0.0, time.perf_counter() - t0 - out["features"])
    return out


def _table(per_scan: list[dict[str, float]]) -> tuple[list[str], dict[str, Any]]:
    n = len(per_scan)
    mean = {key: sum(s.get(key, 0.0) for s in per_scan) / n for _, key in STAGES}
    total = sum(mean.values())
    lines = [f"  {'stage':<32} {'s/scan':>7} {'share':>6}"]
    lines += [f"  {label:<32} {mean[key]:7.2f} {mean[key] / total:6.1%}" for label, key in STAGES]
    lines.append(f"  {'total (sum of stages)':<32} {total:7.2f} {1:6.0%}")
    return lines, {"seconds_per_scan": mean, "total_s": total}


def main(run: Path | None, n: int, json_path: Path | None) -> None:
    """Run the three passes on the first `n` IXI scans and print the figures."""
    import pandas as pd

    from brainage import Predictor
    from brainage.inference.bundled import default_model_dir

    if not 1 <= n <= MAX_SCANS:
        sys.exit(f"--stages {n}: expected 1 to {MAX_SCANS} scans (a shared 2-core machine)")
    run = run or default_model_dir()
    if run is None:
        sys.exit("no --run given and this installation bundles no model")
    scans = _scans(n)
    load0 = os.getloadavg()
    print(f"{n} IXI scans, run {run}; {os.cpu_count()} CPUs, load average {load0}")
    warnings.simplefilter("ignore")
    predictor = Predictor.from_run(run)
    t1, one = _timed_predict(predictor, scans, 1)
    rss_one = _hwm_mb()
    peaks = _ChildPeaks()
    peaks.start()
    t2, two = _timed_predict(predictor, scans, 2)
    startup = _startup_s(predictor)
    peaks.stop.set()
    peaks.join()
    workers = sorted(peaks.peaks.values(), reverse=True)[:2]  # the two largest: the workers
    rss_worker = workers[0] if workers else float("nan")
    identical = one.equals(two)
    try:
        pd.testing.assert_frame_equal(one, two, check_exact=True)
    except AssertionError as exc:
        identical, why = False, str(exc).splitlines()[0]
    else:
        why = ""
    print(f"--jobs 1: {t1:.1f} s ({t1 / n:.2f} s/scan); --jobs 2: {t2:.1f} s "
          f"({t2 / n:.2f} s/scan, 2 workers' start-up included); throughput ratio "
          f"{t1 / t2:.2f}x (target >= 1.8x); predictions bit-identical: {identical} {why}; "
          f"starting 2 workers with the predictor alone takes {startup:.1f} s")
    print(f"peak RSS: one job (this process) {rss_one:.0f} MB; workers "
          f"{', '.join(f'{w:.0f}' for w in workers)} MB (target <= 2500 MB per worker)")
    per_scan = [_stages_of(predictor, scan) for scan in scans]
    lines, stages = _table(per_scan)
    print(f"stages, mean of {n} scans, one job in this process:")
    print("\n".join(lines))
    load1 = os.getloadavg()
    print(f"load average at the end {load1}")
    if json_path:
        json_path.write_text(json.dumps({
            "run": str(run), "scans": [str(s) for s in scans], "jobs1_s": t1, "jobs2_s": t2,
            "worker_startup_s": startup,
            "ratio": t1 / t2, "bit_identical": identical, "peak_rss_mb_one_job": rss_one,
            "peak_rss_mb_worker": rss_worker, "peak_rss_mb_workers": workers,
            "stages": stages, "per_scan": per_scan,
            "predicted_age": one["predicted_age"].tolist(), "load_average_start": list(load0),
            "load_average_end": list(load1), "cpus": os.cpu_count()}, indent=2) + "\n")
        print(f"wrote {json_path}")
