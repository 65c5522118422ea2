"""ScaleDense (TSAN stage 1) training speed and memory on this machine.

Prints ratios measured in the same run, because absolute seconds drift on shared machines:

* training samples/s at 91x109x91 (batch 2, Adam lr 1e-3 with ``OptimSpec``'s defaults,
  MSE) as a fraction of this machine's fp32 matmul peak (FLOPs of a large matmul timed in
  the same process before and after the model steps; training = 3 x forward FLOPs, the
  forward counted with torch's FlopCounterMode on the meta device, ~114 GFLOP/sample), for
  four settings, each the best of ``--steps`` steps after a warm-up step:

  - fp32, weights in the default contiguous memory format;
  - fp32, weights in ``channels_last_3d`` (what ``brainage train`` uses:
    ``TrainConfig.channels_last = True``, applied in ``RegressionTask.setup``) -- the
    headline figure (goal >= 0.5 of the peak);
  - bf16 autocast, channels_last_3d (its fraction is of the *fp32* peak);
  - fp32 channels_last_3d compiled with ``torch.compile`` as ``compile: true`` does, in a
    fresh process of its own (``--no-compile`` skips it; compiling takes about a minute);

  with the speed-ups channels_last vs contiguous (fp32) and bf16 vs fp32 (channels_last);
* Lightning vs a plain PyTorch loop: the same ScaleDense, batch, shape and optimiser, fp32 in
  channels_last_3d, over the same kind of DataLoader (in-memory random volumes, items
  ``{"image": (1, D, H, W), "age": ()}``), once through ``RegressionTask`` (built like
  ``make_task``: loss ``mse``, scheduler ``none``) driven by a ``lightning.Trainer`` (CPU, no
  logger/checkpoints/progress bar, ``deterministic=True`` as ``build_trainer`` sets on CPU),
  once through a hand-written loop; each in a fresh process for ``--lightning-steps`` steps,
  the first three skipped (start-up, and the allocator settling on huge pages). A step's
  time is from the end of the previous step to the end of this one (data fetch and hooks
  included); the time inside the batch (batch ready -> optimiser step done) is printed too.
  Reported: plain / Lightning median step time, the median over ``--lightning-rounds``
  alternating pairs of processes (goal >= 0.9);
* peak memory per sample (fp32, channels_last_3d as in training): max-RSS growth over the
  first forward+backward at batch 2 minus the same at batch 1, each in a fresh process
  (tracemalloc cannot see torch's allocations).

Usage: ``python benchmarks/bench_models.py [--shape 91 109 91] [--batch 2] [--steps 1]
[--lightning-steps 10] [--json PATH]`` (about 15 training steps: several minutes on 2 cores;
``--shape 45 55 45`` for a quick look, ``--lightning-steps 0`` skips the Lightning comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MODEL = "scaledense"
MODEL_KWARGS = {"output_bias": 50.0}


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
        model = create_model(MODEL)
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 1, *shape))
    return counter.get_total_flops() / 1e9


def _optim() -> dict[str, Any]:
    """Training's default optimiser (Adam, lr 1e-3) as the ``OptimSpec`` dict."""
    from brainage.config import to_dict
    from brainage.training.network_config import OptimSpec

    spec = to_dict(OptimSpec())
    assert spec["name"] == "adam" and spec["lr"] == 1e-3, spec
    return spec


def _adam(model: Any) -> Any:
    import torch

    o = _optim()
    return torch.optim.Adam(model.parameters(), lr=o["lr"], weight_decay=o["weight_decay"],
                            amsgrad=o["amsgrad"])


def _new_model(channels_last: bool) -> tuple[Any, Any]:
    """ScaleDense (seed 0, train mode) and its Adam; weights in channels_last_3d if asked."""
    import torch

    from brainage.models import create_model

    torch.manual_seed(0)
    model = create_model(MODEL, **MODEL_KWARGS).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model, _adam(model)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _forward_backward(model: Any, x: Any, y: Any, bf16: bool) -> None:
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        pred = model(x)
    torch.nn.functional.mse_loss(pred.float(), y).backward()


def _step(model: Any, opt: Any, x: Any, y: Any, bf16: bool) -> float:
    t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _forward_backward(model, x, y, bf16)
    opt.step()
    return time.perf_counter() - t0


def compiled_worker(batch: int, shape: tuple[int, int, int], steps: int) -> dict:
    """A fresh process: fp32 channels_last_3d compiled as ``compile: true`` does in training;
    the first step compiles (faster when TorchInductor's on-disk cache already has it)."""
    import torch

    from brainage.training.module import compile_network

    model, opt = _new_model(channels_last=True)
    compile_network(model)
    x, y = torch.randn(batch, 1, *shape), torch.full((batch,), 60.0)
    first = _step(model, opt, x, y, False)
    return {"compile_s": first,
            "fp32_cl_compiled_s": min(_step(model, opt, x, y, False) for _ in range(steps))}


def worker(batch: int, shape: tuple[int, int, int], steps: int, timing: bool) -> dict:
    """One fresh process: memory of the first fp32 channels_last step; optionally step times.

    Timing (best of `steps` after a warm-up step each): fp32 and bf16 in channels_last_3d on
    the model of the memory step, then fp32 contiguous on a fresh model and optimiser.
    """
    import torch

    model, opt = _new_model(channels_last=True)
    x, y = torch.randn(batch, 1, *shape), torch.full((batch,), 60.0)
    rss0 = _max_rss_mb()
    t0 = time.perf_counter()
    _forward_backward(model, x, y, bf16=False)  # activations + weight gradients
    rss1 = _max_rss_mb()
    opt.step()  # + Adam state: 2 x the weights
    out: dict[str, Any] = {"batch": batch, "fwd_bwd_growth_mb": rss1 - rss0,
                           "step_growth_mb": _max_rss_mb() - rss0,
                           "first_step_s": time.perf_counter() - t0}
    if timing:
        out["peak_gflops"] = matmul_peak_gflops()
        # The memory step above was the fp32 channels_last warm-up.
        out["fp32_cl_s"] = min(_step(model, opt, x, y, False) for _ in range(steps))
        _step(model, opt, x, y, True)  # warm-up of the bf16 kernels
        out["bf16_cl_s"] = min(_step(model, opt, x, y, True) for _ in range(steps))
        del model, opt
        model, opt = _new_model(channels_last=False)
        _step(model, opt, x, y, False)  # warm-up of the contiguous kernels
        out["fp32_contiguous_s"] = min(_step(model, opt, x, y, False) for _ in range(steps))
        out["peak_gflops_after"] = matmul_peak_gflops()
    return out


def _loader(batch: int, shape: tuple[int, int, int], steps: int) -> Any:
    """DataLoader over `steps` batches of in-memory random volumes (the training item format)."""
    import torch

    gen = torch.Generator().manual_seed(0)
    items = [{"image": torch.randn(1, *shape, generator=gen),
              "age": torch.tensor(40.0 + i % 40, dtype=torch.float32)}
             for i in range(batch * steps)]
    return torch.utils.data.DataLoader(items, batch_size=batch, shuffle=False,  # type: ignore
                                       num_workers=0)


#: Loop steps left out of the Lightning/plain comparison: the first pays for start-up, and the
#: allocator takes about three steps to settle (huge pages, THP_MEM_ALLOC_ENABLE).
WARMUP_STEPS = 3


def _step_stats(starts: list[float], ends: list[float]) -> dict[str, Any]:
    """Median step time after the warm-up: end-to-end (end -> end) and inside the batch."""
    w = WARMUP_STEPS
    cycle = [b - a for a, b in zip(ends[w - 1:-1], ends[w:], strict=True)]
    inside = [e - s for s, e in zip(starts[w:], ends[w:], strict=True)]
    return {"steps": len(ends), "step_s": statistics.median(cycle),
            "in_batch_s": statistics.median(inside), "step_times_s": cycle,
            "first_step_s": ends[0] - starts[0]}


def plain_worker(batch: int, shape: tuple[int, int, int], steps: int) -> dict:
    """Hand-written PyTorch loop, fp32, weights in channels_last_3d."""
    import torch

    model, opt = _new_model(channels_last=True)
    starts, ends = [], []
    for item in _loader(batch, shape, steps):
        starts.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        pred = model(item["image"])
        loss = torch.nn.functional.mse_loss(pred.float(), item["age"].float())
        loss.backward()
        opt.step()
        ends.append(time.perf_counter())
    return _step_stats(starts, ends)


def lightning_worker(batch: int, shape: tuple[int, int, int], steps: int) -> dict:
    """The same steps through ``RegressionTask`` and a ``lightning.Trainer``."""
    import warnings

    import lightning as L
    import torch

    from brainage.config import to_dict
    from brainage.training.module import RegressionTask
    from brainage.training.network_config import SchedulerSpec
    from brainage.training.trainer import QUIET

    class Clock(L.Callback):
        def __init__(self) -> None:
            self.starts: list[float] = []
            self.ends: list[float] = []

        def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                                 batch_idx: int) -> None:
            self.starts.append(time.perf_counter())

        def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                               batch_idx: int) -> None:
            self.ends.append(time.perf_counter())

    torch.manual_seed(0)  # same initial weights as plain_worker
    task = RegressionTask(model={"name": MODEL, "kwargs": dict(MODEL_KWARGS)},
                          loss={"name": "mse", "kwargs": {}}, optim=_optim(),
                          scheduler=to_dict(SchedulerSpec(name="none")), monitor="train_mae",
                          channels_last=True)
    clock = Clock()
    trainer = L.Trainer(max_steps=steps, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        deterministic=True, callbacks=[clock])
    with warnings.catch_warnings():
        for pattern in QUIET:
            warnings.filterwarnings("ignore", pattern)
        trainer.fit(task, train_dataloaders=_loader(batch, shape, steps))
    weight = next(p for p in task.model.parameters() if p.dim() == 5)
    return {**_step_stats(clock.starts, clock.ends),
            "channels_last": weight.is_contiguous(memory_format=torch.channels_last_3d)}


def _run_worker(kind: str, batch: int, shape: tuple[int, ...], steps: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--batch", str(batch), "--steps",
           str(steps), "--shape", *map(str, shape)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"worker {kind!r} failed (rc {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _speed(name: str, seconds: float, batch: int, train_gflop: float, peak: float) -> dict:
    gflops = train_gflop / seconds
    fig = {"s_per_step": seconds, "samples_per_s": batch / seconds, "gflops": gflops,
           "fraction_of_peak": gflops / peak}
    print(f"  {name:<22} {seconds:8.2f} s/step  {fig['samples_per_s']:7.3f} samples/s  "
          f"{gflops:7.1f} GFLOP/s = {fig['fraction_of_peak']:.2f} of the fp32 matmul peak")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[91, 109, 91])
    parser.add_argument("--steps", type=int, default=1,
                        help="timed steps per setting after a warm-up step (best is kept)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lightning-steps", type=int, default=10,
                        help="steps of the Lightning and plain loops, the first three skipped "
                             "(0: skip the comparison)")
    parser.add_argument("--lightning-rounds", type=int, default=3,
                        help="alternating (plain, Lightning) process pairs; the median ratio "
                             "is reported")
    parser.add_argument("--no-compile", dest="compile", action="store_false",
                        help="skip the torch.compile setting (it compiles for about a minute)")
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--worker", choices=["timing", "memory", "compiled", "plain", "lightning"],
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = tuple(args.shape)
    if args.worker in ("timing", "memory"):
        print(json.dumps(worker(args.batch, shape, args.steps, args.worker == "timing")))  # type: ignore
        return
    if args.worker:
        fn = {"plain": plain_worker, "lightning": lightning_worker,
              "compiled": compiled_worker}[args.worker]
        print(json.dumps(fn(args.batch, shape, args.steps)))  # type: ignore[arg-type]
        return
    if args.steps < 1 or 0 < args.lightning_steps <= WARMUP_STEPS or args.lightning_steps < 0 \
            or args.lightning_rounds < 1:
        parser.error(f"--steps and --lightning-rounds must be >= 1 and --lightning-steps 0 or "
                     f"> {WARMUP_STEPS}")
    import torch

    load0 = os.getloadavg()
    print(f"load average {load0}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, input {shape}, batch {args.batch}")
    fwd = forward_gflop(shape)  # type: ignore[arg-type]
    big = _run_worker("timing", args.batch, shape, args.steps)
    if args.compile:
        big.update(_run_worker("compiled", args.batch, shape, args.steps))
    one = _run_worker("memory", 1, shape, 0)
    train_gflop = 3 * fwd * args.batch
    peak = (big["peak_gflops"] + big["peak_gflops_after"]) / 2
    print(f"forward {fwd:.1f} GFLOP/sample; training step (batch {args.batch}) "
          f"{train_gflop:.0f} GFLOP")
    print(f"matmul peak {big['peak_gflops']:.1f} / {big['peak_gflops_after']:.1f} GFLOP/s "
          f"(before / after the model steps; mean {peak:.1f} used)")
    print(f"training step, best of {args.steps} after a warm-up step:")
    speed = {
        "fp32_contiguous": _speed("fp32 contiguous", big["fp32_contiguous_s"], args.batch,
                                  train_gflop, peak),
        "fp32_channels_last": _speed("fp32 channels_last_3d", big["fp32_cl_s"], args.batch,
                                     train_gflop, peak),
        "bf16_channels_last": _speed("bf16 channels_last_3d", big["bf16_cl_s"], args.batch,
                                     train_gflop, peak),
    }
    if "fp32_cl_compiled_s" in big:
        speed["fp32_channels_last_compiled"] = _speed(
            "fp32 cl_3d + compile", big["fp32_cl_compiled_s"], args.batch, train_gflop, peak)
        speed["fp32_channels_last_compiled"]["compile_first_step_s"] = big["compile_s"]
        print(f"  torch.compile (`compile: true`): {big['fp32_cl_s'] / big['fp32_cl_compiled_s']:.2f}x "
              f"faster than eager fp32 channels_last_3d; first step (compiling) {big['compile_s']:.0f} s")
    cl_speedup = big["fp32_contiguous_s"] / big["fp32_cl_s"]
    bf16_speedup = big["fp32_cl_s"] / big["bf16_cl_s"]
    print(f"  speed-up channels_last_3d vs contiguous (fp32): {cl_speedup:.2f}x; "
          f"bf16 vs fp32 (channels_last_3d): {bf16_speedup:.2f}x")
    print(f"  headline (training default, fp32 channels_last_3d): "
          f"{speed['fp32_channels_last']['fraction_of_peak']:.2f} of the peak (goal >= 0.50)")
    per_sample = (big["fwd_bwd_growth_mb"] - one["fwd_bwd_growth_mb"]) / max(args.batch - 1, 1)
    print(f"max-RSS growth over the first forward+backward (fp32, channels_last_3d): batch "
          f"{args.batch} {big['fwd_bwd_growth_mb']:.0f} MB, batch 1 "
          f"{one['fwd_bwd_growth_mb']:.0f} MB -> {per_sample:.0f} MB per sample; whole first "
          f"step incl. Adam state: {big['step_growth_mb']:.0f} MB at batch {args.batch}")
    result: dict[str, Any] = {
        "shape": list(shape), "batch": args.batch, "steps": args.steps,
        "cpus": os.cpu_count(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "load_average_start": list(load0),
        "forward_gflop_per_sample": fwd, "train_gflop_per_step": train_gflop,
        "matmul_peak_gflops": [big["peak_gflops"], big["peak_gflops_after"]],
        "speed": speed, "speedup_channels_last_vs_contiguous": cl_speedup,
        "speedup_bf16_vs_fp32_channels_last": bf16_speedup,
        "memory": {"fwd_bwd_growth_mb": {str(args.batch): big["fwd_bwd_growth_mb"],
                                         "1": one["fwd_bwd_growth_mb"]},
                   "per_sample_mb": per_sample, "first_step_growth_mb": big["step_growth_mb"]},
    }
    if args.lightning_steps:
        # Alternate the two loops in pairs of fresh processes: this machine's speed drifts
        # by tens of percent between minutes, so one pair cannot resolve a 10 % goal.
        pairs = []
        for _ in range(args.lightning_rounds):
            plain = _run_worker("plain", args.batch, shape, args.lightning_steps)
            light = _run_worker("lightning", args.batch, shape, args.lightning_steps)
            if not light["channels_last"]:
                print("  warning: the Lightning task's weights were not in channels_last_3d")
            pairs.append({"plain": plain, "lightning": light,
                          "ratio": plain["step_s"] / light["step_s"]})
        ratios = [p["ratio"] for p in pairs]
        ratio = statistics.median(ratios)
        print(f"Lightning vs plain loop (fp32, channels_last_3d, {args.lightning_steps} steps "
              f"each, first {WARMUP_STEPS} skipped, {len(pairs)} alternating pairs): "
              "plain/Lightning per pair " + ", ".join(f"{r:.2f}" for r in ratios)
              + f" -> median {ratio:.2f} (goal >= 0.9); median step plain "
              f"{statistics.median(p['plain']['step_s'] for p in pairs):.2f} s, Lightning "
              f"{statistics.median(p['lightning']['step_s'] for p in pairs):.2f} s")
        result["lightning_vs_plain"] = {"steps": args.lightning_steps, "pairs": pairs,
                                        "ratio_plain_over_lightning": ratio}
    load1 = os.getloadavg()
    result["load_average_end"] = list(load1)
    print(f"load average at the end {load1}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
