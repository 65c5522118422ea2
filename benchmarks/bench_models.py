"""ScaleDense (TSAN stage 1) training speed and memory on this machine.

Prints ratios measured in the same process, because absolute seconds drift on shared machines:

* training samples/s at 91x109x91 (batch 2, Adam) as a fraction of this machine's fp32 matmul
  peak (FLOPs of a large matmul timed in the same process; training = 3 x forward FLOPs, the
  forward counted with torch's FlopCounterMode on the meta device, ~114 GFLOP);
* bf16 autocast vs fp32 step time;
* peak memory per sample: max-RSS growth over the first forward+backward at batch 2 minus the
  same at batch 1, each in a fresh process (tracemalloc cannot see torch's allocations).

Usage: ``python benchmarks/bench_models.py [--shape 91 109 91] [--steps 1]`` (a few minutes
on 2 cores; ``--shape 45 55 45`` for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def matmul_peak_gflops(n: int = 2048, reps: int = 10) -> float:
    """fp32 GFLOP/s of an n x n matmul, best of three timings."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 * reps / best / 1e9


def forward_gflop(shape: tuple[int, int, int]) -> float:
    """Forward FLOPs of one sample, counted on the meta device (no memory, no compute)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from brainage.models import create_model

    with torch.device("meta"):
        model = create_model("scaledense")
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 1, *shape))
    return counter.get_total_flops() / 1e9


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _forward_backward(model, x, y, bf16: bool) -> None:  # type: ignore[no-untyped-def]
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pred = model(x)
    ((pred.float() - y) ** 2).mean().backward()


def _step(model, opt, x, y, bf16: bool) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _forward_backward(model, x, y, bf16)
    opt.step()
    return time.perf_counter() - t0


def worker(batch: int, shape: tuple[int, int, int], steps: int, timing: bool) -> dict:
    """One fresh process: memory of the first step; optionally fp32 and bf16 step times."""
    import torch

    from brainage.models import create_model

    torch.manual_seed(0)
    model = create_model("scaledense", output_bias=50.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4, amsgrad=True)
    x, y = torch.randn(batch, 1, *shape), torch.full((batch,), 60.0)
    rss0 = _max_rss_mb()
    t0 = time.perf_counter()
    _forward_backward(model, x, y, bf16=False)  # activations + weight gradients
    rss1 = _max_rss_mb()
    opt.step()  # + Adam (amsgrad) state: 3 x the weights
    out = {"batch": batch, "fwd_bwd_growth_mb": rss1 - rss0,
           "step_growth_mb": _max_rss_mb() - rss0, "first_step_s": time.perf_counter() - t0}
    if timing:
        out["peak_gflops"] = matmul_peak_gflops()
        out["fp32_s"] = min(_step(model, opt, x, y, False) for _ in range(steps))
        _step(model, opt, x, y, True)  # warm-up of the bf16 kernels
        out["bf16_s"] = min(_step(model, opt, x, y, True) for _ in range(steps))
        out["peak_gflops_after"] = matmul_peak_gflops()
    return out


def _run_worker(batch: int, shape: tuple[int, ...], steps: int, timing: bool) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--batch", str(batch), "--steps", str(steps),
           "--shape", *map(str, shape)] + (["--timing"] if timing else [])
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[91, 109, 91])
    parser.add_argument("--steps", type=int, default=1, help="timed steps (best is kept)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--timing", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.worker:
        print(json.dumps(worker(args.batch, shape, args.steps, args.timing)))  # type: ignore
        return
    import torch

    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, input {shape}")
    fwd = forward_gflop(shape)  # type: ignore[arg-type]
    big = _run_worker(args.batch, shape, args.steps, timing=True)
    one = _run_worker(1, shape, 0, timing=False)
    train_gflop = 3 * fwd * args.batch
    achieved = train_gflop / big["fp32_s"]
    peak = (big["peak_gflops"] + big["peak_gflops_after"]) / 2
    print(f"forward {fwd:.1f} GFLOP/sample; training step (batch {args.batch}) "
          f"{train_gflop:.0f} GFLOP")
    print(f"matmul peak {big['peak_gflops']:.1f} / {big['peak_gflops_after']:.1f} GFLOP/s "
          "(before / after the model steps)")
    print(f"fp32: {big['fp32_s']:.1f} s/step = {args.batch / big['fp32_s']:.3f} samples/s = "
          f"{achieved:.1f} GFLOP/s = {achieved / peak:.2f} of the matmul peak")
    print(f"bf16 autocast: {big['bf16_s']:.1f} s/step, speed-up vs fp32 "
          f"{big['fp32_s'] / big['bf16_s']:.2f}x")
    per_sample = (big["fwd_bwd_growth_mb"] - one["fwd_bwd_growth_mb"]) / max(args.batch - 1, 1)
    print(f"max-RSS growth over the first forward+backward: batch {args.batch} "
          f"{big['fwd_bwd_growth_mb']:.0f} MB, batch 1 {one['fwd_bwd_growth_mb']:.0f} MB -> "
          f"{per_sample:.0f} MB per sample (fp32 activations); whole first step incl. Adam "
          f"state: {big['step_growth_mb']:.0f} MB at batch {args.batch}")
    print(f"load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
