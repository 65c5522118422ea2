"""Speed of the synthetic cohort: seconds per subject, and the ratio to one resampling.

Usage::

    python benchmarks/bench_simulate.py [--n 10] [--voxel-size 2] [--jobs 1 2]

Prints the one-off template preparation time, then for each job count the wall-clock
seconds per subject (simulation + NIfTI writing), the CPU seconds per subject (this
process and its workers: robust on a busy machine) and the ratio of each to one same-process
``scipy.ndimage.map_coordinates`` (linear) of a volume on the 2 mm MNI grid
(99 x 117 x 95) -- the cost floor of "resample once". Goal: under 1 s per subject at 2 mm
with 2 jobs.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from brainage.data.simulate import load_templates, make_config, write_cohort


def reference_seconds(repeats: int = 5) -> float:
    """Median time of one linear map_coordinates of a 2 mm MNI-grid volume."""
    templates = load_templates(2.0)
    coords = np.indices((99, 117, 95), dtype=np.float32) + np.float32(0.3)  # (3, X, Y, Z)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        ndi.map_coordinates(templates.t1, coords, order=1)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished workers."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--voxel-size", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    start = time.perf_counter()
    load_templates(args.voxel_size)
    print(f"template preparation ({args.voxel_size:g} mm, once per process): "
          f"{time.perf_counter() - start:.2f} s")
    ref = reference_seconds()
    print(f"reference: one map_coordinates of a 2 mm volume: {ref * 1000:.0f} ms")
    config = make_config(n=args.n, sites=4, seed=0, voxel_size=args.voxel_size)
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in args.jobs:
            cpu0, start = cpu_seconds(), time.perf_counter()
            write_cohort(Path(tmp) / f"jobs{jobs}", config, jobs=jobs)
            per = (time.perf_counter() - start) / args.n
            cpu = (cpu_seconds() - cpu0) / args.n
            print(f"--jobs {jobs}: {per:.3f} s/subject wall = {per / ref:.1f} x reference; "
                  f"{cpu:.3f} CPU s/subject = {cpu / ref:.1f} x reference "
                  f"({args.n} subjects, {args.voxel_size:g} mm)")


if __name__ == "__main__":
    main()
