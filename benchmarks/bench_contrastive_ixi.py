"""IXI 5-fold cross-validation: contrastive pretraining + ridge probe vs the supervised CPU preset.

The same five folds as ``bench_ixi_cv.py`` (k-fold, seed 0, no validation subjects; written
once to ``<out>/splits.json``), the same preparation (default spec, cached in
``--prepared``). Two runs:

contrastive  ``brainage pretrain -c contrastive`` with the folds (one encoder per fold on its
             training subjects), then ``brainage probe``: the ridge of each fold is fitted on
             that fold's training subjects and predicts its test subjects (out of fold);
sfcn         ``brainage train`` with the CPU preset (quickstart: SFCN, soft labels, 3 seeds
             per fold), its out-of-fold predictions.

IXI is one site: no site probe (its balanced accuracy is undefined) and no external test;
this compares age accuracy only. Printed: out-of-fold MAE and r, and the wall time.

    python benchmarks/bench_contrastive_ixi.py --out /tmp/ixi-contrastive
        [--prepared /tmp/brainage-ixi-prepared] [--set key=value ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ixi_cv import IXI, load_line, make_splits, prepare  # noqa: E402


def contrastive(prepared: Path, out: Path, overrides: list[str]) -> pd.DataFrame:
    """Pretrain per fold, probe, return the probe's out-of-fold predictions."""
    from brainage.evaluation.probe_run import probe_run
    from brainage.training.config import load_train_config
    from brainage.training.pretrain import pretrain_cohort

    config = load_train_config("contrastive", ["split.method=kfold", "split.folds=5",
                                               "progress_bar=false", *overrides])
    run = pretrain_cohort(prepared, out / "contrastive", config, out / "splits.json")
    probe_run(run, prepared)
    return pd.read_csv(run / "predictions.tsv", sep="\t")


def supervised(prepared: Path, out: Path) -> pd.DataFrame:
    """The CPU preset's out-of-fold predictions."""
    from brainage.training.config import load_train_config
    from brainage.training.fit import train_cohort

    config = load_train_config("quickstart", ["split.method=kfold", "split.folds=5",
                                              "progress_bar=false"])
    run = train_cohort(prepared, out / "sfcn", config, out / "splits.json")
    return pd.read_csv(run / "predictions.tsv", sep="\t")


def summary(name: str, preds: pd.DataFrame, seconds: float) -> dict:
    rows = preds[preds["age"].notna() & preds["set"].str.endswith("test")]
    y, p = rows["age"].to_numpy(float), rows["predicted_age"].to_numpy(float)
    return {"model": name, "n": len(rows), "mae": float(np.mean(np.abs(p - y))),
            "r": float(np.corrcoef(y, p)[0, 1]), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prepared", type=Path, default=Path("/tmp/brainage-ixi-prepared"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--models", default="contrastive,sfcn")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not IXI.is_dir():
        sys.exit(f"IXI data not found under {IXI}")
    print(load_line(), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"prepare_seconds": prepare(args.prepared, args.jobs), "models": []}
    make_splits(args.prepared, args.out)
    for name in args.models.split(","):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            preds = contrastive(args.prepared, args.out, args.overrides) if \
                name == "contrastive" else supervised(args.prepared, args.out)
        results["models"].append(summary(name, preds, time.perf_counter() - start))
        print(json.dumps(results["models"][-1]), flush=True)
    print(f"\n{'model':<14}{'n':>5}{'MAE':>8}{'r':>8}{'minutes':>9}")
    for r in results["models"]:
        print(f"{r['model']:<14}{r['n']:>5}{r['mae']:>8.2f}{r['r']:>8.3f}{r['seconds'] / 60:>9.1f}")
    print(load_line())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
