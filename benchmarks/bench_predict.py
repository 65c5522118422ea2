"""End-to-end ``brainage predict`` of one raw scan on 2 cores (goal: <= 15 s).

Runs ``brainage predict RUN SCAN -o TMP/predictions.tsv`` as a subprocess, ``--repeats``
times, and reports the best and the median wall seconds of the whole command: Python start-up,
imports, loading the run, preprocessing the raw scan with the run's own spec (conform,
registration, skull-strip, resampling, normalisation, QC) and the forward pass. The first
repeat also pays for cold file caches; all times are printed. The cores are limited through
the environment only (no CPU pinning): ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
``OPENBLAS_NUM_THREADS`` and ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` set to ``--threads``
(default 2). ``brainage predict`` prints no per-step timings, so only the total is reported.
The load average is printed with the figures, since other work on the machine inflates them.

Usage: ``python benchmarks/bench_predict.py --run RUN_DIR [--scan SCAN.nii.gz] [--repeats 3]
[--threads 2] [--json PATH]``; the default scan is the first ``sub-*/anat/*_T1w.nii.gz`` of
``../shared/data/ixi-hh-2mm`` (relative to the repository root).

``--stages N`` (issue 22) instead predicts the first N (at most 6) raw IXI scans with the
run (default: the bundled model) three times in this process: with ``jobs=1``, then
``jobs=2`` (the throughput ratio of the two, measured in the same run, and whether the
predictions are bit-identical), then scan by scan with each stage timed: read (header),
read data + reorient (conform, head mask), N4, mask (skull-strip), registration, resample, tissue
maps, QC, features and model (incl. OOD, bias correction, interval). It prints each
stage's seconds per scan and share, and the peak RSS of this process (one job) and of the
largest worker (``resource.getrusage``). ``benchmarks/predict_stages.py`` holds that part.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ixi-hh-2mm"
GOAL_S = 15.0


def default_scan() -> Path:
    """The first raw T1w scan of the IXI-HH 2 mm sample, or exit with a clear message."""
    scans = sorted(DEFAULT_DATA.glob("sub-*/anat/*_T1w.nii.gz"))
    if not scans:
        sys.exit(f"no scan given and no sub-*/anat/*_T1w.nii.gz under {DEFAULT_DATA}; "
                 "pass one with --scan PATH")
    return scans[0]


def brainage_command() -> list[str]:
    """The ``brainage`` console script next to this interpreter (as a user would run it)."""
    script = Path(sys.executable).parent / "brainage"
    if script.exists():
        return [str(script)]
    found = shutil.which("brainage")
    if found:
        return [found]
    return [sys.executable, "-c", "from brainage.cli.main import run; run()"]


def run_once(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[float, str]:
    """Wall seconds of one ``brainage predict`` and its stdout; exit on failure."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"brainage predict failed (rc {done.returncode}) after {seconds:.1f} s:\n"
                 f"{' '.join(cmd)}\n{done.stdout[-2000:]}{done.stderr[-4000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder written by `brainage train`")
    parser.add_argument("--scan", type=Path, help="raw NIfTI scan (default: first IXI-HH T1w)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per repeat")
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--stages", type=int, metavar="N",
                        help="per-stage table and --jobs 1 vs 2 on N (<= 6) IXI scans")
    args = parser.parse_args()
    if args.stages is not None:
        from predict_stages import main as stages

        stages(args.run, args.stages, args.json)
        return
    if args.run is None:
        parser.error("--run is required (except with --stages, where the bundled model is "
                     "the default)")
    if not (args.run / "run.json").exists():
        sys.exit(f"{args.run} is not a run folder written by `brainage train` (no run.json)")
    scan = args.scan or default_scan()
    if not scan.exists():
        sys.exit(f"scan {scan} not found")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    n = str(args.threads)
    env = {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
           "OPENBLAS_NUM_THREADS": n, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": n}
    load0 = os.getloadavg()
    print(f"load average {load0}, {os.cpu_count()} CPUs, {args.threads} threads; "
          f"run {args.run}, scan {scan}")
    times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        out = Path(tmp) / "predictions.tsv"
        cmd = [*brainage_command(), "predict", str(args.run), str(scan), "-o", str(out)]
        for i in range(args.repeats):
            out.unlink(missing_ok=True)
            seconds, stdout = run_once(cmd, env, args.timeout)
            times.append(seconds)
            print(f"  repeat {i + 1}: {seconds:.2f} s (load average {os.getloadavg()[0]:.2f})")
        table = out.read_text().splitlines()
    best, median = min(times), statistics.median(times)
    load1 = os.getloadavg()
    verdict = "meets" if best <= GOAL_S else "misses"
    print(f"brainage predict, one raw scan, {args.threads} threads: best {best:.2f} s, median "
          f"{median:.2f} s of {len(times)} (goal <= {GOAL_S:.0f} s: best {verdict} it); "
          f"load average at the end {load1}")
    print(f"  predict said: {stdout.strip().splitlines()[0] if stdout.strip() else '(nothing)'}")
    record = dict(zip(table[0].split("\t"), table[1].split("\t"), strict=False)) \
        if len(table) > 1 else {}
    print(f"  predicted_age {record.get('predicted_age')}, qc_flags "
          f"{record.get('qc_flags') or '-'}")
    result: dict[str, Any] = {
        "run": str(args.run), "scan": str(scan), "threads": args.threads, "cpus": os.cpu_count(),
        "times_s": times, "best_s": best, "median_s": median, "goal_s": GOAL_S,
        "load_average_start": list(load0), "load_average_end": list(load1),
        "prediction": record, "command": cmd,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
