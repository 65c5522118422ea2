"""Preprocessing benchmark: speed, registration accuracy, skull-stripping Dice, cache reads.

Sections (each prints its figures; ``--json`` also writes them):

speed      default 2 mm pipeline on the real IXI scans (../shared/data/ixi-hh-2mm), one scan
           at a time with ``--threads`` ITK threads (2 = the 2-core goal): median seconds per
           scan (wall and CPU), each step's share of the total, similarity to the template
           (median, worst five named), template-mask Dice to the reference masks.
deepbet    deepbet in native space on the same scans: Dice to the reference masks and
           seconds per scan, next to the template mask's.
pose       registration accuracy on scans with a known pose: IXI scans moved by random
           affines (+-12 deg, +-15 mm, +-8 % scale) and resampled on other grids (voxel
           size and orientation), plus synthetic heads built in template space. Error = mean
           distance over the template brain between the recovered template->native affine
           and the true one, in mm and in 2 mm voxels.
variants   seconds per scan, Dice and recall of the reference brain for the template mask,
           deepbet, tissue maps, SyN, no N4 and the gan grid (a few scans).
cache      reading one cached float16 array (memory-mapped, converted to float32) vs one
           training step (forward + backward + Adam) of a small 4-layer 3D CNN at
           91x109x91, batch 1, in the same process: the ratio should be >= 20.

    python benchmarks/bench_prepare.py [--n 125] [--threads 2] [--json results.json]
        [--sections speed,deepbet,pose,variants,cache] [--pose-scans 8] [--variant-scans 5]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

THREADS = "2"
for _i, _a in enumerate(sys.argv):  # ITK reads its thread count when it starts
    if _a == "--threads" and _i + 1 < len(sys.argv):
        THREADS = sys.argv[_i + 1]
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = THREADS
os.environ.setdefault("OMP_NUM_THREADS", THREADS)

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

IXI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ixi-hh-2mm"
STEPS = ("load", "n4", "skullstrip", "register", "resample", "normalise", "qc")


def ixi_scans(n: int) -> list[Path]:
    scans = sorted(IXI.glob("sub-*/anat/sub-*_T1w.nii.gz"))
    if not scans:
        sys.exit(f"IXI data not found under {IXI}")
    return scans[:n]


def reference_mask(scan: Path) -> np.ndarray:
    label = scan.name.split("_")[0]
    ref = IXI / "derivatives" / "reference-masks" / label / "anat" / \
        f"{label}_desc-brain_mask.nii.gz"
    return np.asarray(nib.as_closest_canonical(nib.load(ref)).dataobj) > 0


def recall(mask: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of the reference brain inside `mask`."""
    return float((mask & ref).sum()) / max(int(ref.sum()), 1)


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def bench_speed(scans: list[Path]) -> dict:
    from brainage.preprocessing import PreprocessingSpec, preprocess
    from brainage.preprocessing.cache import CacheStore, ScanKey
    from brainage.preprocessing.derivatives import write_scan
    from brainage.preprocessing.skullstrip import dice

    spec = PreprocessingSpec.create()
    preprocess(scans[0], spec)  # warm-up: imports, template loading
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = CacheStore(tmp, spec)
        store.prepare()
        for scan in scans:
            r = preprocess(scan, spec)
            t0 = time.perf_counter()
            key = ScanKey(scan.name.split("_")[0])
            store.write_array(key, r.array)
            write_scan(tmp, key, spec, r.array, r.mask, r.qc, str(scan))
            write_s = time.perf_counter() - t0
            rows.append({"scan": scan.name.split("_")[0], "wall": r.seconds["total"] + write_s,
                         "cpu": r.cpu_seconds["total"], "write": write_s,
                         **{s: r.seconds[s] for s in STEPS},
                         "similarity": r.qc["similarity"], "flags": r.qc["flags"],
                         "dice": dice(r.native_mask, reference_mask(scan)),
                         "recall": recall(r.native_mask, reference_mask(scan))})
            print(f"  {rows[-1]['scan']}: {rows[-1]['wall']:.2f} s, dice {rows[-1]['dice']:.3f}, "
                  f"recall {rows[-1]['recall']:.3f}, "
                  f"similarity {rows[-1]['similarity']:.3f} {r.qc['flags'] or ''}", flush=True)
    wall = np.array([r["wall"] for r in rows])
    steps = {s: float(sum(r[s] for r in rows) / wall.sum()) for s in (*STEPS, "write")}
    worst = sorted(rows, key=lambda r: r["similarity"])[:5]
    dices = np.array([r["dice"] for r in rows])
    out = {
        "n": len(rows), "median_wall_s": float(np.median(wall)),
        "median_cpu_s": float(np.median([r["cpu"] for r in rows])),
        "p90_wall_s": float(np.percentile(wall, 90)), "step_share": steps,
        "similarity_median": float(np.median([r["similarity"] for r in rows])),
        "worst5": [(r["scan"], round(r["similarity"], 3), round(r["dice"], 3)) for r in worst],
        "template_dice_median": float(np.median(dices)), "template_dice_min": float(dices.min()),
        "template_dice_p5": float(np.percentile(dices, 5)),
        "recall_median": float(np.median([r["recall"] for r in rows])),
        "recall_p5": float(np.percentile([r["recall"] for r in rows], 5)),
        "template_mask_s_median": float(np.median([r["skullstrip"] for r in rows])),
        "flagged": [(r["scan"], r["flags"]) for r in rows if r["flags"]], "load": load_line(),
    }
    print(f"speed: median {out['median_wall_s']:.2f} s/scan wall ({out['median_cpu_s']:.2f} s "
          f"CPU), p90 {out['p90_wall_s']:.2f} s; step shares "
          + ", ".join(f"{k} {v:.1%}" for k, v in steps.items()))
    print(f"  similarity median {out['similarity_median']:.3f}; worst five {out['worst5']}")
    print(f"  default ({spec.skullstrip}) mask Dice median {out['template_dice_median']:.4f} "
          f"(5th pct {out['template_dice_p5']:.4f}, min {out['template_dice_min']:.4f}), "
          f"recall median {out['recall_median']:.4f} (5th pct {out['recall_p5']:.4f}); "
          f"{len(out['flagged'])} flagged; {out['load']}")
    return out


def bench_deepbet(scans: list[Path]) -> dict:
    import torch

    from brainage.preprocessing.skullstrip import deepbet_mask, dice
    from brainage.preprocessing.spec_params import DEFAULT_PARAMS
    from brainage.preprocessing.steps import conform

    torch.set_num_threads(int(THREADS))
    deepbet_mask(conform(nib.load(scans[0])).data, DEFAULT_PARAMS)  # warm-up (model load)
    dices, recalls, secs = [], [], []
    for scan in scans:
        conf = conform(nib.load(scan))
        t0 = time.perf_counter()
        mask = deepbet_mask(conf.data, DEFAULT_PARAMS)
        secs.append(time.perf_counter() - t0)
        dices.append(dice(mask, reference_mask(scan)))
        recalls.append(recall(mask, reference_mask(scan)))
        print(f"  {scan.name.split('_')[0]}: deepbet {secs[-1]:.2f} s, dice {dices[-1]:.3f}, "
              f"recall {recalls[-1]:.3f}", flush=True)
    d = np.array(dices)
    out = {"n": len(d), "dice_median": float(np.median(d)), "dice_min": float(d.min()),
           "dice_p5": float(np.percentile(d, 5)), "seconds_median": float(np.median(secs)),
           "recall_median": float(np.median(recalls)), "load": load_line()}
    print(f"deepbet: Dice median {out['dice_median']:.4f} (5th pct {out['dice_p5']:.4f}, min "
          f"{out['dice_min']:.4f}), recall median {out['recall_median']:.4f}; "
          f"{out['seconds_median']:.2f} s/scan; {out['load']}")
    return out


VARIANTS = {"default": {}, "template-mask": {"skullstrip": "template"},
            "deepbet": {"skullstrip": "deepbet"}, "tissues": {"tissues": True},
            "nonlinear": {"nonlinear": True}, "no-n4": {"n4": False}, "gan-grid": {"grid": "gan"}}


def bench_variants(scans: list[Path]) -> dict:
    """Seconds per scan and template-mask / deepbet Dice for each optional step."""
    from brainage.preprocessing import PreprocessingSpec, preprocess
    from brainage.preprocessing.skullstrip import dice

    out = {}
    for name, kwargs in VARIANTS.items():
        spec = PreprocessingSpec.create(**kwargs)
        preprocess(scans[0], spec)  # warm-up
        rows = [(r.seconds["total"], r.cpu_seconds["total"], r.qc["similarity"],
                 dice(r.native_mask, reference_mask(s)), recall(r.native_mask,
                                                                reference_mask(s)))
                for s in scans for r in [preprocess(s, spec)]]
        a = np.array(rows)
        out[name] = {"n": len(a), "median_wall_s": float(np.median(a[:, 0])),
                     "median_cpu_s": float(np.median(a[:, 1])),
                     "similarity_median": float(np.median(a[:, 2])),
                     "dice_median": float(np.median(a[:, 3])),
                     "recall_median": float(np.median(a[:, 4])), "load": load_line()}
        print(f"variant {name}: {out[name]['median_wall_s']:.2f} s/scan wall "
              f"({out[name]['median_cpu_s']:.2f} s CPU), similarity "
              f"{out[name]['similarity_median']:.3f}, Dice {out[name]['dice_median']:.4f}, "
              f"recall {out[name]['recall_median']:.4f}; {out[name]['load']}", flush=True)
    return out


def _template_points() -> np.ndarray:
    from brainage.preprocessing.antsio import affine_of, template_mask

    tm = template_mask(2)
    aff = affine_of(tm)
    return np.argwhere(tm.numpy() > 0.5) @ aff[:3, :3].T + aff[:3, 3]


GRIDS = [((1.5, 2.0, 2.5), "LAS"), ((2.0, 2.0, 2.0), "PSR"), ((2.5, 2.5, 1.5), "RPI")]


def bench_pose(scans: list[Path], n_poses: int = 3) -> dict:
    from brainage.preprocessing import PreprocessingSpec, preprocess
    from brainage.preprocessing.known_pose import (
        apply_pose,
        mean_displacement,
        random_pose,
        synthetic_head,
    )

    spec, pts, rng = PreprocessingSpec.create(), _template_points(), np.random.default_rng(0)
    errors: dict[str, list[float]] = {"ixi": [], "synthetic": []}
    for scan in scans:
        img = nib.as_closest_canonical(nib.load(scan))
        data = img.get_fdata(dtype=np.float32)
        base = np.array(preprocess(img, spec).qc["affine_template_to_native"])
        for _ in range(n_poses):
            pose = random_pose(rng)
            zooms, ax = GRIDS[int(rng.integers(len(GRIDS)))]
            moved = apply_pose(data, img.affine, pose, zooms, ax)
            rec = np.array(preprocess(moved, spec).qc["affine_template_to_native"])
            errors["ixi"].append(mean_displacement(rec, pose @ base, pts))
        print(f"  {scan.name.split('_')[0]}: {np.round(errors['ixi'][-n_poses:], 2)} mm",
              flush=True)
    head, affine, _brain = synthetic_head(2)
    for _ in range(len(scans)):
        pose = random_pose(rng)
        zooms, ax = GRIDS[int(rng.integers(len(GRIDS)))]
        rec = np.array(preprocess(apply_pose(head, affine, pose, zooms, ax), spec
                                  ).qc["affine_template_to_native"])
        errors["synthetic"].append(mean_displacement(rec, pose, pts))
    out = {}
    for kind, errs in errors.items():
        e = np.array(errs)
        out[kind] = {"n": len(e), "mean_mm": float(e.mean()), "median_mm": float(np.median(e)),
                     "max_mm": float(e.max()), "mean_voxels": float(e.mean() / 2.0),
                     "max_voxels": float(e.max() / 2.0)}
        print(f"pose ({kind}): mean displacement {e.mean():.2f} mm = {e.mean() / 2:.2f} voxels "
              f"(median {np.median(e):.2f} mm, max {e.max():.2f} mm, n {len(e)})")
    out["load"] = load_line()
    return out


def _small_cnn():
    import torch
    from torch import nn

    layers, c_in = [], 1
    for c_out in (8, 16, 32, 64):  # four stride-2 conv blocks
        layers += [nn.Conv3d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm3d(c_out),
                   nn.ReLU()]
        c_in = c_out
    layers += [nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(64, 1)]
    model = nn.Sequential(*layers)
    return model, torch.optim.Adam(model.parameters(), 1e-3)


def bench_cache(n_arrays: int = 20, steps: int = 10) -> dict:
    import torch

    from brainage.preprocessing import PreprocessingSpec
    from brainage.preprocessing.cache import CacheStore, ScanKey, open_cached

    torch.set_num_threads(int(THREADS))
    spec = PreprocessingSpec.create()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = CacheStore(tmp, spec)
        store.prepare()
        paths = [store.write_array(ScanKey(f"sub-{i:03d}"),
                                   rng.normal(size=spec.grid.shape).astype(np.float32))
                 for i in range(n_arrays)]
        reads, converts = [], []
        for p in paths * 3:
            t0 = time.perf_counter()
            raw = np.array(open_cached(p))  # float16 bytes into memory (memory-mapped read)
            t1 = time.perf_counter()
            x = torch.from_numpy(raw).float()[None, None]  # (1, 1, X, Y, Z) float32
            reads.append(t1 - t0)
            converts.append(time.perf_counter() - t0)
    model, opt = _small_cnn()
    target = torch.zeros(1, 1)
    times = []
    for _ in range(steps + 2):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    read_s, conv_s = float(np.median(reads)), float(np.median(converts))
    step_s = float(np.median(times[2:]))
    out = {"read_ms": read_s * 1e3, "read_float32_ms": conv_s * 1e3, "step_ms": step_s * 1e3,
           "ratio": step_s / read_s, "ratio_float32": step_s / conv_s,
           "array_mb": float(np.prod(spec.grid.shape) * 2 / 1e6), "load": load_line()}
    print(f"cache: read {out['read_ms']:.2f} ms ({out['array_mb']:.1f} MB float16, page cache "
          f"warm), {out['read_float32_ms']:.2f} ms with conversion to a float32 tensor; training "
          f"step {out['step_ms']:.1f} ms (4-layer Conv3d, 91x109x91, batch 1, {THREADS} "
          f"threads): ratio {out['ratio']:.0f}x (read), {out['ratio_float32']:.0f}x (read + "
          f"float32); {out['load']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=125, help="IXI scans for speed and deepbet")
    ap.add_argument("--pose-scans", type=int, default=8, help="IXI scans for the pose test")
    ap.add_argument("--variant-scans", type=int, default=5, help="IXI scans per variant")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sections", default="speed,deepbet,pose,variants,cache")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict = {"threads": args.threads, "date": time.strftime("%Y-%m-%d")}
    sections = args.sections.split(",")
    if "speed" in sections:
        results["speed"] = bench_speed(ixi_scans(args.n))
    if "deepbet" in sections:
        results["deepbet"] = bench_deepbet(ixi_scans(args.n))
    if "pose" in sections:
        results["pose"] = bench_pose(ixi_scans(125)[:: max(1, 125 // args.pose_scans)]
                                     [: args.pose_scans])
    if "variants" in sections:
        results["variants"] = bench_variants(ixi_scans(125)[:: 125 // args.variant_scans]
                                             [: args.variant_scans])
    if "cache" in sections:
        results["cache"] = bench_cache()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
