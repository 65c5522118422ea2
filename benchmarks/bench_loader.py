"""Is the data loader ever the bottleneck? Loading a batch vs one training step.

Writes `n` float16 arrays on the TSAN grid (91 x 109 x 91), then times, in this process:
* loading one batch through ``ScanDataset`` + ``DataLoader`` (memory-mapped float16 ->
  float32, no workers), and
* one forward + backward step of the CPU preset model (SFCN 8-16-32-32-16) on that batch.

Prints both and their ratio (loader / step; below 1 means the loader keeps up even
without worker processes). Usage: ``python benchmarks/bench_loader.py [--batch 8]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from brainage.data.datasets import ScanDataset
from brainage.models import create_model
from brainage.tasks.config import TrainConfig

SHAPE = (91, 109, 91)


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(args.batch):
        paths.append(root / f"s{i}.npy")
        np.save(paths[-1], rng.normal(size=SHAPE).astype(np.float16))
    loader = DataLoader(ScanDataset(paths, age=np.full(args.batch, 50.0)),
                        batch_size=args.batch)
    load = best_of(lambda: next(iter(loader)))
    cfg = TrainConfig()
    model = create_model(cfg.model.name, **cfg.model.kwargs)
    batch = next(iter(loader))

    def step() -> None:
        model.zero_grad()
        model(batch["image"]).sum().backward()

    train = best_of(step)
    print(f"batch {args.batch} at {SHAPE}, torch threads {torch.get_num_threads()}")
    print(f"  load batch (no workers) {load * 1e3:8.1f} ms")
    print(f"  CPU-preset train step   {train * 1e3:8.1f} ms")
    print(f"  loader / step ratio     {load / train:8.3f}")


if __name__ == "__main__":
    main()
