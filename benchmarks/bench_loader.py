"""Is the data loader ever the bottleneck? Loading a batch vs one training step.

Writes `n` float16 arrays on the TSAN grid (91 x 109 x 91), then times, in this process:
* loading one batch through ``ScanDataset`` + ``DataLoader`` (memory-mapped float16 ->
  float32, no workers), and
* one forward + backward step of the CPU preset model (``TrainConfig()``'s SFCN on 6 mm
  maps of 8 intensity bins) on that batch, the model computing its input stage;
* the same with the input stage computed once and cached by the dataset, as training does
  without augmentation (``BrainAgeDataModule.stage_inputs``): a cached batch and a step
  under ``model.staged_inputs()``.

Prints the times, loader / step (below 1: the loader keeps up without worker processes) and
the speed-up of the cached input stage (load + step, raw / cached).
Usage: ``python benchmarks/bench_loader.py [--batch 8]``
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
from brainage.training.config import TrainConfig

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
    staged_set = ScanDataset(paths, age=np.full(args.batch, 50.0))
    staged_set.set_stage(model.input_stage)
    staged_loader = DataLoader(staged_set, batch_size=args.batch)
    next(iter(staged_loader))  # fills the cache (once per scan in training)
    staged_load = best_of(lambda: next(iter(staged_loader)))
    staged = next(iter(staged_loader))

    def staged_step() -> None:
        model.zero_grad()
        with model.staged_inputs():
            model(staged["image"]).sum().backward()

    staged_train = best_of(staged_step)
    print(f"batch {args.batch} at {SHAPE}, torch threads {torch.get_num_threads()}, model "
          f"{cfg.model.name} {cfg.model.kwargs}")
    print(f"  load batch (no workers) {load * 1e3:8.1f} ms")
    print(f"  CPU-preset train step   {train * 1e3:8.1f} ms (the model bins and pools)")
    print(f"  loader / step ratio     {load / train:8.3f}")
    print(f"  cached staged batch     {staged_load * 1e3:8.1f} ms")
    print(f"  step on staged input    {staged_train * 1e3:8.1f} ms")
    print(f"  cached input stage: load + step {(load + train) / (staged_load + staged_train):.1f}x "
          "faster")


if __name__ == "__main__":
    main()
