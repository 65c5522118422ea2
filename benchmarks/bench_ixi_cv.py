"""Real-data accuracy: 5-fold cross-validation on the IXI scans: networks, classical models, stacks.

Every model sees the same five folds (written once to ``<out>/splits.json``):

baseline      PCA of the masked registered volume (2 mm) + ridge (alpha chosen by inner CV on
              the training folds only), as in the classical brain-age literature.
sfcn          ``brainage train`` with the CPU network preset (quickstart) on k-fold.
tsan          the TSAN cascade at CPU scale (presets tsan_cpu + tsan_cpu_stage2): ScaleDense
              stage 1 trained with MSE + ranking losses, stage 2 on the out-of-fold stage-1 ages.
tissue_ridge  the classical presets on GM + CSF maps (``prepare --tissues``): ridge,
tissue_gpr    Gaussian process (linear kernel), RBF kernel ridge.
tissue_krr
stack         preset stack_cpu: sfcn + tissue_ridge combined on their out-of-fold predictions
              (the sfcn run above is reused as its member when it was trained: same preset,
              same splits, so training it again would give the same weights).
stack3        sfcn + tissue_ridge + tissue_krr, combined the same way from their runs'
              out-of-fold predictions (cross-fitted by fold, as the stack run does).

For each model it prints out-of-fold MAE, Pearson r, bias-corrected MAE (Beheshti, cross-fitted
by subject across 5 folds: the correction never sees the subject it corrects), the coverage and
mean width of the run's nominal 90 % conformal intervals (checked on held-out halves), and the
training wall time. Preparation (``brainage prepare`` with the default spec, cached in
``--prepared``) is timed separately and skipped when the cache is complete.

    python benchmarks/bench_ixi_cv.py --out /tmp/ixi-cv [--prepared /tmp/ixi-prep]
        [--models baseline,sfcn,tsan] [--jobs 2] [--json results.json]
        [--folds 0,1] [--set key=value ...]   # quick experiments: some folds, overrides

Goal (issue 13): the best default <= 5.0 years in CV and >= 1 year better than the CPU
network preset's 6.0; the whole benchmark within 60 minutes on 2 CPU cores. Intervals:
nominal 90 % coverage checked on held-out halves, overall and per tertile of age.

    python benchmarks/bench_ixi_cv.py --out /tmp/ixi-cv --prepared /tmp/ixi-prepared \
        --models baseline,sfcn,tissue_ridge,tissue_gpr,tissue_krr,stack,stack3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
IXI = ROOT / ".." / "shared" / "data" / "ixi-hh-2mm"


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def prepare(prepared: Path, jobs: int) -> float:
    """Prepare IXI with the default spec into `prepared` (resumes; skips finished scans)."""
    from brainage.data.sources import load_cohort
    from brainage.preprocessing import PreprocessingSpec
    from brainage.preprocessing.runner import run_cohort

    start = time.perf_counter()
    summary = run_cohort(load_cohort(IXI), prepared, PreprocessingSpec.create(tissues=True),
                         jobs=jobs, progress=False)
    seconds = time.perf_counter() - start
    print(f"prepare: {summary.total} scans, {summary.skipped} already cached, "
          f"{seconds:.0f} s", flush=True)
    return seconds


def make_splits(prepared: Path, out: Path):
    from brainage.data.splits import load_or_make_splits
    from brainage.preprocessing.prepared import open_prepared

    cohort = open_prepared(prepared).cohort()
    # No validation subjects, as in the CPU presets (split.val 0): every non-test subject trains.
    return load_or_make_splits(out / "splits.json", cohort, "kfold", k=5, seed=0,
                               val_fraction=0.0)


def baseline(prepared: Path, splits, folds: list[int]) -> pd.DataFrame:
    """PCA + ridge on the masked 2 mm volumes; out-of-fold predictions."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainage.data.datasets import load_array
    from brainage.preprocessing.prepared import open_prepared

    table = open_prepared(prepared).table
    table = table[table["age"].notna()].reset_index(drop=True)
    volumes = np.stack([np.asarray(load_array(p), dtype=np.float32) for p in table["array_path"]])
    mask = (volumes != 0).mean(axis=0) > 0.5  # voxels inside most brains
    x = volumes[:, mask]  # (N, voxels)
    rows = []
    for fold in folds:
        test = table["participant_id"].isin(splits.subjects("test", fold)).to_numpy()
        model = make_pipeline(StandardScaler(), PCA(n_components=min(50, int((~test).sum()) - 1),
                                                    random_state=0),
                              RidgeCV(alphas=np.logspace(-2, 4, 25)))
        model.fit(x[~test], table.loc[~test, "age"].to_numpy(float))
        rows.append(pd.DataFrame({"participant_id": table.loc[test, "participant_id"],
                                  "age": table.loc[test, "age"].to_numpy(float),
                                  "predicted_age": model.predict(x[test]), "fold": fold}))
    return pd.concat(rows, ignore_index=True)


PRESETS = {"sfcn": "quickstart", "tissue_ridge": "tissue_ridge", "tissue_gpr": "tissue_gpr",
           "tissue_krr": "tissue_krr", "stack": "stack_cpu"}


def train(kind: str, prepared: Path, out: Path, overrides: list[str]) -> pd.DataFrame:
    from brainage.evaluation.predictions import read_predictions
    from brainage.training.cascade import train_cascade
    from brainage.training.config import load_train_config
    from brainage.training.fit import train_cohort

    split = ["split.method=kfold", "split.folds=5", "progress_bar=false"]
    if kind in PRESETS:
        config = load_train_config(PRESETS[kind], [*split, *(overrides if kind == "sfcn"
                                                              else [])])
        if kind == "stack" and (out / "sfcn" / "run.json").is_file() and not overrides:
            import shutil  # the same preset on the same splits: reuse it as the member

            member = out / "stack" / "members" / "quickstart"
            if not member.exists():
                shutil.copytree(out / "sfcn", member)
        if config.stack is not None:
            from brainage.training.stack import train_stack

            run = train_stack(prepared, out / kind, config, splits=out / "splits.json")
        else:
            run = train_cohort(prepared, out / kind, config, splits=out / "splits.json")
    elif kind == "stack3":
        return stack_of_runs(prepared, out, ["sfcn", "tissue_ridge", "tissue_krr"]), None
    else:
        config1 = load_train_config("tsan_cpu", [*split, *overrides])
        config2 = load_train_config("tsan_cpu_stage2", [*split])
        run = train_cascade(prepared, out / "tsan", config1, config2, splits=out / "splits.json")
    return read_predictions(run / "predictions.tsv"), run


def stack_of_runs(prepared: Path, out: Path, names: list[str]) -> pd.DataFrame:
    """Cross-fitted convex stack of finished runs' out-of-fold predictions."""
    from brainage.data.splits_file import Splits
    from brainage.preprocessing.prepared import open_prepared
    from brainage.training.stack import crossfit_stack, member_predictions

    table = open_prepared(prepared).table
    mp = member_predictions(out, names, table)
    age = table["age"].to_numpy(float)
    splits = Splits.from_json(out / "splits.json")
    pred, oof = crossfit_stack(mp[names].to_numpy(), age, mp, splits.n_folds, "convex")
    return pd.DataFrame({"participant_id": table["participant_id"][oof], "age": age[oof],
                         "predicted_age": pred[oof], "fold": mp["fold"][oof]})


def summarise(name: str, preds: pd.DataFrame, seconds: float, run: Path | None) -> dict:
    from brainage.evaluation import metrics as M
    from brainage.evaluation.crossfit import crossfit_correct

    preds = preds[preds["age"].notna()].reset_index(drop=True)
    y, p = preds["age"].to_numpy(float), preds["predicted_age"].to_numpy(float)
    out = {"model": name, "n": len(preds), "mae": M.mae(y, p), "r": M.pearson_r(y, p),
           "gap_age_slope": M.gap_slope(y, p), "seconds": seconds}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        corrected = crossfit_correct(preds, "beheshti", k=5, seed=0)
    out["mae_corrected"] = M.mae(y, corrected["corrected_age"].to_numpy(float))
    fold = preds["fold"].astype(str)
    out["mae_per_fold"] = {f: round(M.mae(y[fold == f], p[fold == f]), 2)
                           for f in sorted(fold.unique())}
    if run is not None:
        metrics = json.loads((run / "metrics.json").read_text())
        metrics = metrics.get("final", metrics)
        intervals = metrics.get("intervals", {})
        out["interval_coverage"] = intervals.get("check_coverage")
        out["interval_mean_width"] = intervals.get("check_mean_width")
        out["interval_coverage_by_age_tertile"] = intervals.get(
            "check_coverage_by_age_tertile")
        spread = metrics.get("bin_spread", {}).get("test", {})
        if spread:  # cascade: SD of stage-2 ages within 5-year bins of the stage-1 age
            out["stage2_within_bin_sd"] = spread.get("mean_sd")
            stage1 = json.loads((run / "stage1" / "metrics.json").read_text())["uncorrected"]
            out["stage1_mae"] = stage1["test"]["mae"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prepared", type=Path, default=Path("/tmp/brainage-ixi-prepared"))
    parser.add_argument("--models", default="baseline,sfcn,tsan")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--folds", default="0,1,2,3,4",
                        help="baseline folds (deep runs always train all five)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="stage-1 config override key=value (experiments)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not IXI.is_dir():
        sys.exit(f"IXI data not found under {IXI}")
    import torch

    print(f"{load_line()}; torch {torch.__version__}, {torch.get_num_threads()} threads",
          flush=True)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"prepare_seconds": prepare(args.prepared, args.jobs), "models": []}
    splits = make_splits(args.prepared, args.out)
    folds = [int(f) for f in args.folds.split(",")]
    for name in args.models.split(","):
        t0 = time.perf_counter()
        if name == "baseline":
            preds, run = baseline(args.prepared, splits, folds), None
            preds.to_csv(args.out / "baseline_predictions.tsv", sep="\t", index=False)
        else:
            preds, run = train(name, args.prepared, args.out, args.overrides)
        row = summarise(name, preds, time.perf_counter() - t0, run)
        results["models"].append(row)
        print(json.dumps(row), flush=True)
    results["total_seconds"] = time.perf_counter() - start
    results["train_and_baseline_seconds"] = results["total_seconds"] - results["prepare_seconds"]
    print(f"\n{'model':<14}{'MAE':>7}{'r':>7}{'slope':>7}{'MAE corr':>10}{'cover90':>9}"
          f"{'tertiles':>17}{'width':>7}{'minutes':>9}")
    for r in results["models"]:
        cov = r.get("interval_coverage")
        width = r.get("interval_mean_width")
        ter = r.get("interval_coverage_by_age_tertile")
        ter_s = "/".join(f"{t:.2f}" for t in ter) if ter else ""
        print(f"{r['model']:<14}{r['mae']:>7.2f}{r['r']:>7.3f}{r['gap_age_slope']:>7.2f}"
              f"{r['mae_corrected']:>10.2f}{'' if cov is None else f'{cov:.3f}':>9}{ter_s:>17}"
              f"{'' if width is None else f'{width:.1f}':>7}{r['seconds'] / 60:>9.1f}")
    print(f"total {results['total_seconds'] / 60:.1f} min (prepare "
          f"{results['prepare_seconds'] / 60:.1f} min); {load_line()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
