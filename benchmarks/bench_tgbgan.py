"""TGB-GAN (Li et al., MIUA 2021), sized down for 2 CPU cores: does synthesis help a regressor?

Parts (run one at a time with ``--part``, or ``all``; each reuses what earlier parts wrote in
``--work``):

data     simulate 60 subjects (1 site, 4 mm, seed 0) and prepare them on a 6 mm 32^3 cube,
         min-max normalised (the TGB-GAN intensity convention).
gans     per fold of 5-fold splits (seed 0; the splits ``brainage train --folds 5`` makes):
         TGB-GAN (``tgbgan_cpu``), the ablation without task branch (``tgbgan_cpu_no_task``)
         and a plain autoencoder of the same generator (beta 0, no critic).
regress  synthesise from each GAN kind (bins of 5 years, cap 10, pairs reused: 1-year bins
         hold too few pairs at 48 subjects) and train the same regressor (the CPU SFCN
         preset) on real only / real + TGB-GAN / real + no-task synthetic subjects (ratio 1,
         age-balanced), 3 seeds, equal optimiser steps; prints paired test-MAE differences
         with 95 % t intervals, paired t and Wilcoxon p over folds x seeds, and per subject.
regions  mass of each GAN's young -> old change map inside the simulator's aging regions,
         against the map of randomly initialised generators of the same architecture.
recon    SSIM and correlation of reconstructions of each fold's test subjects (never seen
         by that fold's GAN): TGB-GAN, no-task, plain autoencoder.
cost     seconds per GAN step (critic + generator + task branch, batch 2) at 96^3 on 2 threads
         for the CPU and the published sizes, peak memory, against a matmul peak.

    OMP_NUM_THREADS=1 python benchmarks/bench_tgbgan.py --work /tmp/gtb --part all

``--cohort ixi`` runs ``data``, ``gans``, ``regress``, ``regions`` and ``recon`` on the real IXI
scans of ``../shared/data/ixi-hh-2mm`` instead (the 121 with an age; prepared on the same
6 mm cube, min-max; 5-year bins capped at 20, since 97 training subjects put about 8 in each
bin). Real scans have no ground-truth aging map: ``regions`` then takes the empirical one
(|mean of the oldest quarter - mean of the youngest| of the real images), its top fifth
inside the brain as the regions.

    OMP_NUM_THREADS=1 python benchmarks/bench_tgbgan.py --cohort ixi --work /tmp/gtb-ixi \
        --part data

Training runs on one thread: on a loaded 2-core machine two OpenMP threads made a GAN step
7x slower (spin-waiting), and the parts can then run side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

FOLDS, SEEDS = 5, (0, 1, 2)
GRID = "6mm:32x32x32"
GANS = {"tgb": ("tgbgan_cpu", []), "notask": ("tgbgan_cpu_no_task", []),
        "ae": ("tgbgan_cpu", ["objective.beta=0", "objective.adversarial=0"])}
SYNTH = {"cap": 10, "bin_width": 5.0, "reuse_pairs": True, "seed": 0}
#: The real cohort (``--cohort ixi``): its own synthesis cap (5-year bins hold ~8 of the
#: 97 training subjects, so cap 10 would leave ~2 children per bin, too few for ratio 1).
IXI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ixi-hh-2mm"
COHORT = {"name": "sim"}
SYNTH_IXI = {**SYNTH, "cap": 20}
QUIET = ["progress_bar=false", "tensorboard=false", "accelerator=cpu"]
#: The downstream regressor: the project's CPU SFCN preset (soft labels over 8 intensity-bin
#: fractions per voxel) on the 6 mm cube, one model per fold and seed. The paper's VGG3D
#: (no normalisation, MSE) predicted the mean age after 30 epochs here (MAE 14.8 y).
REGRESSOR = ["model.kwargs.input_pool=1", "model.kwargs.input_range=[0.0,1.0]", "repeats=1",
             "split.method=kfold", "split.folds=5", "split.val=0.0"]
EPOCHS = 40
#: Synthetic per real training subject (``--ratio``); runs of other ratios get their own folders.
RATIO = {"value": 1.0}
#: The seeds this process trains (``--seeds``); the statistics always need all of SEEDS.
TRAIN_SEEDS = {"value": SEEDS}


def run_dir(work: Path, condition: str, seed: int) -> Path:
    """The regressor run of a condition and seed (at the current ratio)."""
    ratio = RATIO["value"]
    tag = "" if condition == "real" or ratio == 1.0 else f"-r{ratio:g}"
    return work / "reg" / f"{condition}{tag}-seed{seed}"


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  {label}: {time.perf_counter() - start:.0f} s ({load_line()})", flush=True)
    return out


def part_data(work: Path) -> None:
    import brainage

    if COHORT["name"] == "ixi":
        if not IXI.is_dir():
            sys.exit(f"--cohort ixi needs the IXI scans at {IXI.resolve()} (../shared/data).")
        if not (work / "prep6" / "index.tsv").is_file():
            timed("prepare IXI", brainage.prepare, IXI, work / "prep6", grid=GRID,
                  normalisation="minmax", tissues=False, jobs=2, threads=1, progress=False)
        return
    if not (work / "sim").is_dir():
        timed("simulate", brainage.simulate, work / "sim", n=60, sites=1, seed=0, voxel_size=4)
    if not (work / "prep6" / "index.tsv").is_file():
        timed("prepare", brainage.prepare, work / "sim", work / "prep6", grid=GRID,
              normalisation="minmax", jobs=2, threads=1, progress=False)


def part_gans(work: Path, kinds: list[str]) -> None:
    import brainage

    for kind in kinds:
        preset, extra = GANS[kind]
        timed(f"GAN {kind} ({preset} {' '.join(extra)}), 5 folds", brainage.gan_train,
              work / "prep6", work / f"gan-{kind}", preset, overrides=[*QUIET, *extra],
              folds=FOLDS)


def regressor_run(work: Path, condition: str, seed: int) -> Path:
    """Train (or reuse) the regressor of one condition and seed; equal optimiser steps."""
    import brainage
    from brainage.training.synthetic import plan_mix

    run = run_dir(work, condition, seed)
    syn = None if condition == "real" else work / f"syn-{condition}"
    epochs = EPOCHS
    if syn is not None:  # the same number of steps as real-only: fewer, larger epochs
        from brainage.data.splits_file import Splits
        from brainage.preprocessing.prepared import open_prepared
        from brainage.training.config import SyntheticSpec

        splits = Splits.from_json(syn / "splits.json")
        mix = plan_mix(SyntheticSpec(str(syn), RATIO["value"]), open_prepared(work / "prep6"),
                       splits)
        share = np.mean([f.real / (f.real + len(f.chosen)) for f in mix.folds])
        epochs = int(round(EPOCHS * share))
    sets = [*QUIET, *REGRESSOR, f"seed={seed}", f"epochs={epochs}"]
    if not (run / "run.json").is_file():
        brainage.train(work / "prep6", run, None, overrides=sets, synthetic=syn,
                       synthetic_ratio=None if syn is None else RATIO["value"],
                       splits=work / "gan-tgb" / "splits.json")
    return run


def fold_maes(run: Path) -> pd.Series:
    preds = pd.read_csv(run / "predictions.tsv", sep="\t")
    preds = preds[preds["set"] == "test"]
    return (preds["predicted_age"] - preds["age"]).abs().groupby(preds["fold"].astype(int)).mean()


def paired(label: str, a: np.ndarray, b: np.ndarray) -> dict:
    """Paired difference b - a: mean, 95 % t interval, paired t and Wilcoxon p."""
    from scipy import stats

    d = np.asarray(b) - np.asarray(a)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    t = stats.ttest_rel(b, a)
    w = stats.wilcoxon(d) if np.any(d != 0) else None
    return {"comparison": label, "n": len(d), "mean_diff": d.mean(),
            "ci_low": d.mean() - half, "ci_high": d.mean() + half, "t_p": t.pvalue,
            "wilcoxon_p": None if w is None else w.pvalue}


def part_regress(work: Path, conditions: list[str]) -> dict:
    """Train the `conditions`' regressors (reusing finished ones); the paired statistics once
    every condition has all its runs."""
    import brainage

    for kind in ("tgb", "notask"):
        if kind in conditions and not (work / f"syn-{kind}" / "synthesis.json").is_file():
            timed(f"synthesize {kind}", brainage.gan_synthesize, work / f"gan-{kind}",
                  work / f"syn-{kind}", **(SYNTH_IXI if COHORT["name"] == "ixi" else SYNTH))
    for condition in conditions:
        for seed in TRAIN_SEEDS["value"]:
            timed(f"regressor {condition} seed {seed}", regressor_run, work, condition, seed)
    done = [(c, s) for c in ("real", "tgb", "notask") for s in SEEDS
            if (run_dir(work, c, s) / "run.json").is_file()]
    if len(done) < 3 * len(SEEDS):
        print(f"  {len(done)} of {3 * len(SEEDS)} regressor runs finished; statistics later")
        return {}
    return regress_statistics(work)


def regress_statistics(work: Path) -> dict:
    """Test MAE per condition and the paired comparisons."""
    rows, errors = [], {}
    for condition in ("real", "tgb", "notask"):
        for seed in SEEDS:
            run = run_dir(work, condition, seed)
            for fold, mae in fold_maes(run).items():
                rows.append({"condition": condition, "seed": seed, "fold": fold, "mae": mae})
            preds = pd.read_csv(run / "predictions.tsv", sep="\t")
            preds = preds[preds["set"] == "test"]  # not the scans without an age (IXI has 4)
            errors[(condition, seed)] = (preds["predicted_age"] - preds["age"]).abs().set_axis(
                preds["participant_id"])
    table = pd.DataFrame(rows).pivot_table(index=["fold", "seed"], columns="condition",
                                           values="mae")
    print(f"\nTest MAE (years) per condition (ratio {RATIO['value']:g}), mean over 5 folds x "
          "3 seeds:")
    print(table.mean().round(3).to_string())
    tests = [paired("tgb - real", table["real"], table["tgb"]),
             paired("notask - real", table["real"], table["notask"]),
             paired("tgb - notask", table["notask"], table["tgb"])]
    print("\nPaired over folds x seeds (mean_diff = MAE of the first - MAE of the second; "
          "positive: the first is worse):")
    print(pd.DataFrame(tests).round(4).to_string(index=False))
    per_subject = {c: pd.concat([errors[(c, s)] for s in SEEDS], axis=1).mean(axis=1)
                   for c in ("real", "tgb", "notask")}
    subj = [paired(f"{c} - real (per subject, seed-mean)", per_subject["real"], per_subject[c])
            for c in ("tgb", "notask")]
    subj.append(paired("tgb - notask (per subject, seed-mean)", per_subject["notask"],
                       per_subject["tgb"]))
    print(pd.DataFrame(subj).round(4).to_string(index=False))
    return {"mae": table.reset_index().to_dict("records"), "paired": tests, "per_subject": subj}


def region_mask(work: Path):
    from brainage.data.simulate.truth_maps import aging_change, on_grid
    from brainage.preprocessing.prepared import open_prepared

    spec = open_prepared(work / "prep6").spec
    change, affine = aging_change(25.0, 80.0, voxel_size=2.0)
    truth = on_grid(change, affine, spec.grid.shape, spec.grid.affine_array)
    return truth > 0.1 * truth.max(), truth


def part_regions(work: Path) -> dict:
    """Mass of change maps in the simulator's aging regions; trained vs random weights."""
    from brainage.models import create_model
    from brainage.preprocessing.prepared import open_prepared
    from brainage.synthesis import mass_fraction
    from brainage.synthesis.change_map_io import member_change_map
    from brainage.synthesis.gan_run import open_gan_run

    data = open_prepared(work / "prep6")
    brain = np.mean([np.load(p) for p in data.table["array_path"]], axis=0) > 0.05
    if COHORT["name"] == "ixi":
        # No ground truth on real scans: the empirical aging map (|oldest quarter - youngest
        # quarter| of the real images) stands in, its top fifth inside the brain the regions.
        truth = real_difference(data)
        mask = brain & (truth >= np.quantile(truth[brain], 0.8))
    else:
        mask, truth = region_mask(work)
    out = {"mask_share_of_brain": float((mask & brain).sum() / brain.sum())}
    print(f"\nAging-region mask: {mask.sum()} voxels, {out['mask_share_of_brain']:.3f} of the "
          "brain (a map spread evenly over the brain would put this share inside)")
    if COHORT["name"] != "ixi":
        ref = real_difference(data)
        out["real_difference"] = {"fraction": mass_fraction(ref, mask),
                                  "in_brain": mass_fraction(ref * brain, mask & brain)}
        print(f"  |mean of the oldest quarter - mean of the youngest| of the real images: "
              f"{out['real_difference']['fraction']:.3f} (inside the brain only "
              f"{out['real_difference']['in_brain']:.3f})")
    for kind in ("tgb", "notask", "ae"):
        gan = open_gan_run(work / f"gan-{kind}")
        fr, rnd, corr, inb, corr_rnd = [], [], [], [], []
        for m in gan.members:
            trained, _, _ = member_change_map(m, data)
            g = m.generator()
            torch_seed(1000 + m.fold)
            fresh = create_model(g.config["name"], **g.config["kwargs"]).eval()
            untrained, _, _ = member_change_map(m, data, generator=fresh)
            fr.append(mass_fraction(trained, mask))
            rnd.append(mass_fraction(untrained, mask))
            inb.append(mass_fraction(trained * brain, mask & brain))
            corr.append(float(np.corrcoef(trained[brain], truth[brain])[0, 1]))
            corr_rnd.append(float(np.corrcoef(untrained[brain], truth[brain])[0, 1]))
        out[kind] = {"fraction": float(np.mean(fr)), "random": float(np.mean(rnd)),
                     "ratio": float(np.mean(fr) / np.mean(rnd)), "in_brain": float(np.mean(inb)),
                     "corr_truth": float(np.mean(corr)), "corr_random": float(np.mean(corr_rnd))}
        print(f"  {kind}: fraction in aging regions {np.mean(fr):.3f} (folds "
              f"{' / '.join(f'{x:.3f}' for x in fr)}); random weights {np.mean(rnd):.3f}; "
              f"ratio {np.mean(fr) / np.mean(rnd):.2f}; inside the brain only "
              f"{np.mean(inb):.3f}; r with the true change {np.mean(corr):.3f} (random weights "
              f"{np.mean(corr_rnd):.3f})")
    return out


def real_difference(data) -> np.ndarray:
    """|mean of the oldest quarter - mean of the youngest quarter| of the real images."""
    t = data.table.dropna(subset=["age"]).sort_values("age")
    n = len(t) // 4
    young = np.mean([np.load(p) for p in t["array_path"][:n]], axis=0)
    old = np.mean([np.load(p) for p in t["array_path"][-n:]], axis=0)
    return np.abs(old.astype(np.float64) - young)


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def part_recon(work: Path) -> dict:
    """SSIM / correlation of reconstructions of each fold's test subjects."""
    import torch

    from brainage.data.splits_file import Splits
    from brainage.preprocessing.prepared import open_prepared
    from brainage.synthesis.gan_run import open_gan_run
    from brainage.synthesis.quality import correlation, ssim

    data = open_prepared(work / "prep6")
    paths = data.table.set_index("participant_id")["array_path"]
    out = {}
    for kind in ("tgb", "notask", "ae"):
        gan = open_gan_run(work / f"gan-{kind}")
        splits = Splits.from_json(gan.splits_file)
        s, r, l1 = [], [], []
        for m in gan.members:
            g = m.generator()
            for sid in splits.subjects("test", m.fold):
                x = np.load(paths[sid]).astype(np.float32)
                with torch.inference_mode():
                    y = g(torch.from_numpy(x)[None, None])[0, 0].numpy()
                brain = x > 0
                s.append(ssim(x, y, brain))
                r.append(correlation(x, y, brain))
                l1.append(float(np.abs(x - y)[brain].mean()))
        out[kind] = {"ssim": float(np.mean(s)), "r": float(np.mean(r)), "l1": float(np.mean(l1)),
                     "n": len(s)}
        print(f"  {kind}: SSIM {np.mean(s):.3f}, r {np.mean(r):.3f}, L1 in brain "
              f"{np.mean(l1):.4f} over {len(s)} held-out test subjects")
    return out


COST_CODE = """
import json, resource, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
from brainage.training.gan import GanTask
from brainage.training.gan_config import load_gan_config
from brainage.losses.adversarial import critic_loss, generator_loss
cfg = load_gan_config(sys.argv[1]); steps = int(sys.argv[2])
task = GanTask.from_config(cfg, 50.0)
(opt_g, opt_d), _ = task.build_optimizers(1)
x = torch.rand(2, 1, 96, 96, 96); age = torch.tensor([30.0, 60.0])
rng = torch.Generator().manual_seed(0)
times = []
for i in range(steps + 1):
    t = time.perf_counter()
    fake = task.generator(x)
    d = critic_loss(task.critic, x, fake, 10.0, rng)
    opt_d.zero_grad(); d.total.backward(); opt_d.step()
    task.critic.requires_grad_(False)
    g = generator_loss(task.critic, fake, x, age, task.regressor, 10.0, 0.1)
    opt_g.zero_grad(); g.total.backward(); opt_g.step()
    task.critic.requires_grad_(True)
    times.append(time.perf_counter() - t)
n = sum(p.numel() for p in task.parameters())
print(json.dumps({"s_per_step": sorted(times[1:])[len(times[1:]) // 2], "first": times[0],
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                  "params_m": n / 1e6}))
"""


def matmul_peak() -> float:
    import torch

    torch.set_num_threads(2)
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9


def part_cost(work: Path, steps: int) -> dict:
    import subprocess

    out = {"matmul_gflops": matmul_peak()}
    print(f"\nmatmul peak {out['matmul_gflops']:.0f} GFLOP/s (2 threads)")
    for threads in (2, 1):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        for preset in ("tgbgan_cpu", "tgbgan"):
            done = subprocess.run([sys.executable, "-c", COST_CODE, preset, str(steps),
                                   str(threads)], env=env, capture_output=True, text=True,
                                  check=True)
            r = out[f"{preset}/{threads}"] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  {preset} at 96^3, batch 2, {threads} thread(s): {r['s_per_step']:.2f} "
                  f"s/step (median of {steps}; first {r['first']:.1f} s), peak RSS "
                  f"{r['peak_gb']:.2f} GiB, {r['params_m']:.1f} M parameters (G + D + R); "
                  f"{load_line()}")
    out["matmul_after"] = matmul_peak()
    return out


def main() -> None:
    import torch

    torch.set_num_threads(1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gtb"))
    parser.add_argument("--cohort", choices=["sim", "ixi"], default="sim",
                        help="60 simulated subjects, or the real IXI scans of ../shared/data")
    parser.add_argument("--part", default="all",
                        choices=["all", "data", "gans", "regress", "regions", "recon", "cost"])
    parser.add_argument("--gans", default="tgb,notask,ae")
    parser.add_argument("--conditions", default="real,tgb,notask")
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help="regressor seeds to train in this process (split a part across "
                             "processes; the statistics need all of 0,1,2)")
    parser.add_argument("--ratio", type=float, default=1.0,
                        help="synthetic per real training subject of the synthetic conditions")
    parser.add_argument("--cost-steps", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    RATIO["value"] = args.ratio
    TRAIN_SEEDS["value"] = tuple(int(x) for x in args.seeds.split(",") if x)
    COHORT["name"] = args.cohort
    if args.cohort == "ixi" and args.part in ("all", "cost"):
        parser.error("--cohort ixi runs the parts data, gans, regress, regions and recon one "
                     "at a time (cost does not depend on the cohort)")
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"bench_tgbgan {args.part} in {args.work}; {load_line()}", flush=True)
    results: dict = {}
    parts = ["data", "gans", "regress", "regions", "recon", "cost"] if args.part == "all" \
        else [args.part]
    for part in parts:
        start = time.perf_counter()
        if part == "data":
            part_data(args.work)
        elif part == "gans":
            part_gans(args.work, args.gans.split(","))
        elif part == "regress":
            results[part] = part_regress(args.work, [c for c in args.conditions.split(",") if c])
        elif part == "cost":
            results[part] = part_cost(args.work, args.cost_steps)
        else:
            results[part] = globals()[f"part_{part}"](args.work)
        print(f"{part}: {time.perf_counter() - start:.0f} s; {load_line()}", flush=True)
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.is_file() else {}
        args.json.write_text(json.dumps({**old, **results}, indent=2, default=float))


if __name__ == "__main__":
    main()
