"""Run the benchmarks one after another (``make bench``); each prints its own figures.

    python benchmarks/run_all.py [--only NAME ...] [--list]

The real-data benchmarks need ../shared/data/ixi-hh-2mm and exit with a message without it.
Expect well over an hour on 2 CPU cores for everything (the IXI cross-validation alone takes
about 40 minutes); docs/benchmarks.md lists the latest figures with their commands.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: name -> arguments after the script (a temporary folder replaces {tmp}).
BENCHMARKS: dict[str, list[str]] = {
    "bench_cohort_validate": [],
    "bench_simulate": [],
    "bench_evaluate": [],
    "bench_loader": [],
    "bench_models": [],
    "bench_prepare": [],
    "cascade_collapse": [],
    "bench_ixi_cv": ["--out", "{tmp}/ixi-cv", "--prepared", "{tmp}/ixi-prepared"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS))
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(BENCHMARKS))
        return
    failed = []
    with tempfile.TemporaryDirectory(prefix="brainage-bench-") as tmp:
        for name in args.only or BENCHMARKS:
            extra = [a.replace("{tmp}", tmp) for a in BENCHMARKS[name]]
            print(f"\n=== {name} ===", flush=True)
            if subprocess.call([sys.executable, str(HERE / f"{name}.py"), *extra]) != 0:
                failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
