"""Cost of a contrastive pretraining step against a supervised step (same encoder, batch).

For each encoder it times each kind of step in a fresh process (the best of ``--steps``
steps after two warm-up steps; the kinds alternate over ``--rounds`` rounds and the best
is kept, so load changes hit every kind alike). A step is forward, loss, backward and
Adam step, fp32, ``channels_last_3d`` weights as training uses, the input stage (pooling,
intensity bins) included:

* ``supervised``: ``RegressionTask`` with the L1 loss, batch B;
* ``contrastive none``: ``ContrastiveTask``, 2 identical views (the paper's runs): the encoder
  runs once per subject, projection + exp loss on the 2B projections;
* ``contrastive 2 views``: 2 different (augmented) views, the encoder on 2B images;
* ``supervised 2B``: the supervised step on 2B images, the reference of one view pair.

Ratios printed: contrastive none / supervised (goal <= 1.3) and contrastive 2 views /
supervised 2B (the cost per view pair: projection head and loss on top of encoding the
views; goal <= 1.3), plus contrastive 2 views / supervised (what augmentation costs in all).
The augmentation itself (torchio, in the data loader) is timed per view apart.

Peak memory per sample: the growth of the resident set's high-water mark over two steps
(reset just before them) at batch 2B minus the same at batch B, divided by B, each in a
fresh process (tracemalloc cannot see torch's buffers; Linux only).

    python benchmarks/bench_contrastive_cost.py [--steps 3] [--rounds 2] [--batch 8]
        [--only cpu|resnet] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

#: name -> (model name, kwargs, input shape)
ENCODERS: dict[str, tuple[str, dict[str, Any], tuple[int, int, int]]] = {
    "cpu preset (SFCN 16-64, 6 mm bins, 2 mm grid)": (
        "sfcn", {"channels": [16, 32, 64, 64], "input_pool": 3, "input_bins": 8,
                 "age_range": [10, 90]}, (91, 109, 91)),
    "ResNet-18 (paper widths, input pooled x2, VBM grid)": (
        "resnet18_3d", {"input_pool": 2}, (121, 145, 121)),
}


def task(kind: str, model: str, kwargs: dict[str, Any]) -> Any:
    """The LightningModule of a supervised (L1) or contrastive (exp, rbf 2) step."""
    from brainage.training.contrastive import ContrastiveTask
    from brainage.training.module import RegressionTask

    spec = {"name": model, "kwargs": kwargs}
    optim = {"name": "adam", "lr": 1e-4, "weight_decay": 5e-5, "amsgrad": False}
    sched = {"name": "none"}
    if kind == "supervised":
        return RegressionTask(spec, {"name": "l1"}, optim, sched, channels_last=True)
    loss = {"name": "contrastive", "kwargs": {"method": "exp", "kernel": "rbf", "sigma": 2.0}}
    return ContrastiveTask(spec, loss, optim, sched, {"views": 2, "projection": [512, 128]},
                           channels_last=True)


def step_fn(kind: str, model: str, kwargs: dict[str, Any], shape: tuple[int, ...],
            batch: int) -> Any:
    """A closure running one optimiser step of `kind` on random data."""
    import torch

    t = task("contrastive" if kind.startswith("contrastive") else "supervised", model, kwargs)
    t.setup("fit")
    t.train()
    opt = torch.optim.Adam(t.parameters(), lr=1e-4)
    views = 2 if kind == "contrastive 2 views" else 1
    x = torch.randn(batch, *([views] if views > 1 else []), 1, *shape)
    age = torch.linspace(20, 80, batch)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        if kind == "supervised":
            loss = t.criterion(t.model.forward_outputs(x), age)
        else:
            loss = t.criterion({"projection": t.project(x)}, age)
        loss.backward()
        opt.step()

    return step


def best_time(kind: str, name: str, batch: int, steps: int) -> float:
    """Best time of `steps` steps of `kind` after two warm-up steps (the allocator settles)."""
    e = ENCODERS[name]
    step = step_fn(kind, e[0], e[1], e[2], batch)
    step()
    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def in_fresh_process(function: str, *args: Any) -> float:
    """``function(*args)`` of this module run in a fresh Python process."""
    here = os.path.dirname(os.path.abspath(__file__))
    call = ", ".join(repr(a) for a in args)
    code = (f"import sys; sys.path.insert(0, {here!r}); import bench_contrastive_cost as b; "
            f"print(b.{function}({call}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def augmentation_seconds(shape: tuple[int, ...], n: int = 5) -> float:
    """Seconds per view of the crop+flip+cutout augmentation (torchio) of one volume."""
    import torch

    from brainage.data.views import view_transform

    transform = view_transform("crop+flip+cutout")
    image = torch.randn(1, *shape)
    start = time.perf_counter()
    for _ in range(n):
        transform(image.clone())
    return (time.perf_counter() - start) / n


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field))


def rss_growth(kind: str, name: str, batch: int) -> float:
    """Peak RSS growth (bytes) over two steps, measured from just before them (Linux: the
    high-water mark is reset first, so imports and set-up do not count)."""
    e = ENCODERS[name]
    step = step_fn(kind, e[0], e[1], e[2], batch)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = _status_kb("VmRSS:")
    step()
    step()
    return (_status_kb("VmHWM:") - base) * 1024.0


def measure(name: str, batch: int, steps: int, rounds: int) -> dict[str, Any]:
    """Step times (each kind in its own fresh processes, `rounds` alternating rounds, the
    best kept) and peak memory per sample of one encoder."""
    runs = {"supervised": ("supervised", batch), "contrastive none": ("contrastive none", batch),
            "contrastive 2 views": ("contrastive 2 views", batch),
            "supervised 2B": ("supervised", 2 * batch)}
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(rounds):
        for label, (kind, b) in runs.items():
            times[label].append(in_fresh_process("best_time", kind, name, b, steps))
    t = {label: min(v) for label, v in times.items()}
    mem = {kind: (in_fresh_process("rss_growth", kind, name, 2 * batch)
                  - in_fresh_process("rss_growth", kind, name, batch)) / batch
           for kind in ("supervised", "contrastive none")}
    return {"encoder": name, "batch": batch, "seconds": t, "all_seconds": times,
            "none_vs_supervised": t["contrastive none"] / t["supervised"],
            "views_vs_supervised_2B": t["contrastive 2 views"] / t["supervised 2B"],
            "views_vs_supervised": t["contrastive 2 views"] / t["supervised"],
            "augment_seconds_per_view": augmentation_seconds(ENCODERS[name][2]),
            "bytes_per_sample": mem}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=["cpu", "resnet"], default=None)
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    one, five, _ = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{one:.1f} {five:.1f} on {os.cpu_count()} CPUs", flush=True)
    names = [n for n in ENCODERS if args.only is None or
             (args.only == "cpu") == n.startswith("cpu")]
    rows = []
    for name in names:
        rows.append(measure(name, args.batch, args.steps, args.rounds))
        print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'encoder':<52}{'none/sup':>9}{'2v/sup2B':>9}{'2v/sup':>8}{'aug s/view':>11}"
          f"{'MB/sample sup':>14}{'MB/sample con':>14}")
    for r in rows:
        mem = r["bytes_per_sample"]
        print(f"{r['encoder']:<52}{r['none_vs_supervised']:>9.2f}"
              f"{r['views_vs_supervised_2B']:>9.2f}{r['views_vs_supervised']:>8.2f}"
              f"{r['augment_seconds_per_view']:>11.3f}{mem['supervised'] / 2**20:>14.1f}"
              f"{mem['contrastive none'] / 2**20:>14.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
