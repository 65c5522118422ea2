"""Does the TSAN stage 2 collapse to one value per 5-year bin, and does normalising its
discretized-age input prevent it?

Synthetic tiny volumes (the training tests' generator), stage 1 trained once with k-fold,
then stage 2 trained on the out-of-fold stage-1 ages in three variants:

* ``faithful``: published head (raw discretized age ~20-80 into the age branch), SGD 1e-5;
* ``normalised``: same but the age branch sees (disc - mean) / sd, SGD 1e-5;
* ``faithful_adam``: published head with Adam 1e-3 (is the optimiser the real limit?);
* ``normalised_adam``: normalised input with Adam 1e-3.

Prints, per variant, the out-of-fold MAE and the spread of final predictions within each
5-year bin of the stage-1 age (mean SD and distinct values per scan, 0.1-year rounding),
next to the same spread of the stage-1 predictions and of the true ages as references.

Usage: ``python benchmarks/cascade_collapse.py [--n 240] [--epochs 30] [--out DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "training"))
from synthetic_runs import make_prepared  # noqa: E402

from brainage.training.cascade import CascadeTask, align_stage1, bin_spread  # noqa: E402
from brainage.training.config import SplitSpec, TrainConfig  # noqa: E402
from brainage.training.fit import train_cohort  # noqa: E402
from brainage.training.network_config import (  # noqa: E402
    LossSpec,
    ModelSpec,
    OptimSpec,
    SchedulerSpec,
)


def configs(epochs: int, folds: int) -> tuple[TrainConfig, dict[str, TrainConfig]]:
    """Stage-1 config and the stage-2 variants."""
    base = TrainConfig(
        model=ModelSpec("sfcn", {"channels": [8, 16, 16], "dropout": 0.0}),
        loss=LossSpec("mse"), optim=OptimSpec("adam", lr=3e-3, weight_decay=5e-4),
        scheduler=SchedulerSpec("plateau", factor=0.5, patience=5), epochs=epochs,
        batch_size=8, early_stopping=20, progress_bar=False, tensorboard=False,
        accelerator="cpu", split=SplitSpec("kfold", folds=folds, val=0.15, seed=0))
    stage2 = dataclasses.replace(
        base, model=ModelSpec("tsan_stage2", {"width": 2, "num_blocks": 2}),
        loss=LossSpec("tsan", {"lam": 10.0, "beta": 1.0}),
        optim=OptimSpec("sgd", lr=1e-5, weight_decay=5e-4, amsgrad=False))
    adam = OptimSpec("adam", lr=1e-3, weight_decay=5e-4)
    variants = {"faithful": stage2,
                "faithful_adam": dataclasses.replace(stage2, optim=adam)}
    for name, optim in (("normalised", stage2.optim), ("normalised_adam", adam)):
        variants[name] = dataclasses.replace(stage2, optim=optim, model=ModelSpec(
            "tsan_stage2", {"width": 2, "num_blocks": 2, "normalise_age": True}))
    return base, variants


def spread_row(name: str, age: np.ndarray, s1: np.ndarray, pred: np.ndarray) -> dict:
    s = bin_spread(s1, pred)
    return {"variant": name, "mae": float(np.mean(np.abs(pred - age))),
            "mean_sd_in_bin": s["mean_sd"], "distinct_per_scan": s["distinct_per_scan"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=240)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = args.out or Path(tempfile.mkdtemp(prefix="cascade-collapse-"))
    t0 = time.perf_counter()
    cohort = make_prepared(out / "prepared", n=args.n, seed=1)
    cfg1, variants = configs(args.epochs, args.folds)
    stage1 = train_cohort(cohort, out / "stage1", cfg1)
    p1 = pd.read_csv(stage1 / "predictions.tsv", sep="\t")
    s1 = align_stage1(cohort.table, p1)
    ages = cohort.table["age"].to_numpy(float)
    rows = [spread_row("true age (reference)", ages, s1, ages),
            spread_row("stage 1 (out-of-fold)", ages, s1, s1)]
    for name, cfg in variants.items():
        if cfg.model.kwargs.get("normalise_age"):
            cfg.model.kwargs.update(age_mean=round(float(ages.mean()), 3),
                                    age_sd=round(float(ages.std()), 3))
        run = train_cohort(cohort, out / name, cfg, stage1 / "splits.json", stage1=s1,
                           task_cls=CascadeTask)
        p2 = pd.read_csv(run / "predictions.tsv", sep="\t")
        rows.append(spread_row(name, p2["age"].to_numpy(), p2["stage1_age"].to_numpy(),
                               p2["predicted_age"].to_numpy()))
    table = pd.DataFrame(rows)
    (out / "collapse.json").write_text(json.dumps(rows, indent=2))
    print(f"{args.n} synthetic subjects, {args.folds}-fold, {args.epochs} epochs, "
          f"{time.perf_counter() - t0:.0f} s; runs in {out}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
