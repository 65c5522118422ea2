"""How fast is cohort validation? Seconds per 1,000 rows, and the ratio to one header read.

Builds a 10,000-row cohort table whose rows point at distinct paths (symbolic links to a
few whole-head NIfTI files: the real IXI scans from ../shared/data when present, else
synthetic 91x109x91 volumes), then times :func:`brainage.data.sources.load_cohort` on it
(table parsing + every header + duplicate checks). The reference, measured in the same
process, is ``nib.load(path).header`` on one file: a ratio near 1 means validation costs
about one header read per row and nothing more.

    python benchmarks/bench_cohort_validate.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from brainage.data.sources import load_cohort

IXI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ixi-hh-2mm"


def source_images(folder: Path, n: int = 8) -> list[Path]:
    """A few real whole-head scans, or synthetic ones of the same kind."""
    real = sorted(IXI.glob("sub-*/anat/*_T1w.nii.gz"))[:n] if IXI.is_dir() else []
    if real:
        return real
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        data = rng.integers(0, 255, size=(91, 109, 91), dtype=np.uint8)
        path = folder / f"src{i}.nii.gz"
        nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0])), path)
        paths.append(path)
    return paths


def build_table(folder: Path, rows: int) -> Path:
    """A TSV of `rows` scans, each path a distinct link to one of the source images."""
    sources = source_images(folder)
    images = folder / "images"
    images.mkdir()
    lines = ["participant_id\tpath\tage\tsex\tsite"]
    for i in range(rows):
        link = images / f"s{i:05d}.nii.gz"
        os.symlink(os.path.abspath(sources[i % len(sources)]), link)
        lines.append(f"s{i:05d}\timages/{link.name}\t{20 + i % 60}\t{'FM'[i % 2]}\tsite{i % 7}")
    table = folder / "cohort.tsv"
    table.write_text("\n".join(lines) + "\n")
    return table


def time_header_read(paths: list[Path], repeats: int = 200) -> float:
    """Seconds for one ``nib.load(path).header`` (the reference)."""
    start = time.perf_counter()
    for i in range(repeats):
        nib.load(paths[i % len(paths)]).header.get_zooms()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        table = build_table(Path(tmp), args.rows)
        links = sorted((Path(tmp) / "images").iterdir())
        load_cohort(table, check_images=False)  # warm imports and caches
        header = time_header_read(links)
        start = time.perf_counter()
        cohort = load_cohort(table)
        full = time.perf_counter() - start
        start = time.perf_counter()
        load_cohort(table, check_images=False)
        no_images = time.perf_counter() - start
    assert len(cohort) == args.rows
    per_row = full / args.rows
    print(f"rows: {args.rows} ({'IXI scans' if IXI.is_dir() else 'synthetic scans'})")
    print(f"validate (headers + table): {full:.2f} s, {1000 * per_row:.3f} s per 1,000 rows")
    print(f"table only (--no-check-images): {1000 * no_images / args.rows:.3f} s per 1,000 rows")
    print(f"one nib.load(...).header: {1e3 * header:.3f} ms")
    print(f"ratio, validation per row / one header read: {per_row / header:.2f}")


if __name__ == "__main__":
    main()
