"""TSAN's two-stage cascade, trained the nnU-Net way on out-of-fold stage-1 predictions.

1. Stage 1 is trained per fold (k-fold); each scan's stage-1 age comes from the fold
   model that did not train on it (out-of-fold).
2. Stage 2 (``tsan_stage2``) is trained on the same folds with those out-of-fold ages as
   input; it predicts a residual on the stage-1 age discretized to 5 years, and its
   output is the final age = discretized + residual.
3. The evaluation reports the per-bin spread of stage-2 predictions: the known failure of
   the published model is a collapse to about one value per 5-year bin.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from brainage.data.cohort import Cohort
from brainage.data.prepared import PreparedCohort, open_prepared
from brainage.errors import BrainAgeError
from brainage.tasks import run_folder as rf
from brainage.tasks.config import STAGE2_MODEL, TrainConfig, stage2_defaults
from brainage.tasks.regression import RegressionTask


def discretize(age: Any, step: float = 5.0) -> np.ndarray:
    """``step * floor(age / step + 0.5)`` (halves round up), as TSAN."""
    return step * np.floor(np.asarray(age, dtype=float) / step + 0.5)


def bin_spread(stage1_age: Any, predicted: Any, step: float = 5.0, decimals: int = 1
               ) -> dict[str, Any]:
    """Spread of final predictions within each discretized stage-1 bin.

    A collapsed stage 2 gives nearly one value per bin: SD near 0 and one or two distinct
    rounded values however many scans the bin holds.

    Args:
        stage1_age: Stage-1 predictions (the bins are their discretized values).
        predicted: Final (stage-2) predictions.
        step: Bin width in years (5).
        decimals: Rounding used to count distinct values (0.1 y).

    Returns:
        ``{"bins": [{"bin", "n", "sd", "distinct", "min", "max"}, ...], "mean_sd",
        "distinct_per_scan"}`` (summaries over bins with at least 2 scans).
    """
    s1, pred = np.asarray(stage1_age, float), np.asarray(predicted, float)
    ok = np.isfinite(s1) & np.isfinite(pred)
    bins_, pred = discretize(s1[ok], step), pred[ok]
    rows = []
    for b in np.unique(bins_):
        p = pred[bins_ == b]
        rows.append({"bin": float(b), "n": int(len(p)), "sd": float(p.std()),
                     "distinct": int(len(np.unique(np.round(p, decimals)))),
                     "min": float(p.min()), "max": float(p.max())})
    multi = [r for r in rows if r["n"] >= 2]
    return {
        "step": step, "decimals": decimals, "bins": rows,
        "mean_sd": float(np.mean([r["sd"] for r in multi])) if multi else None,
        "distinct_per_scan": (float(sum(r["distinct"] for r in multi) / sum(r["n"] for r in multi))
                              if multi else None),
    }


class CascadeTask(RegressionTask):
    """Stage-2 regression: the input batch carries ``stage1_age`` (frozen, out-of-fold).

    Logs the validation per-bin spread (``val_bin_sd``: mean SD of predictions within the
    5-year bins of the stage-1 age) next to ``val_mae``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "stage1_age" not in self.model.covariates:
            raise BrainAgeError(f"the cascade's stage 2 must take the stage-1 age (e.g. "
                                f"{STAGE2_MODEL!r}); got {self.hparams['model']['name']!r}.")
        self._val: list[tuple[Tensor, Tensor]] = []

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        with torch.no_grad():
            self._val.append((batch["stage1_age"].detach().cpu(), self(batch).float().cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        s1 = torch.cat([a for a, _ in self._val]).numpy()
        pred = torch.cat([p for _, p in self._val]).numpy()
        self._val.clear()
        step = float(getattr(self.model, "step", 5.0))
        spread = bin_spread(s1, pred, step)["mean_sd"]
        if spread is not None:
            self.log("val_bin_sd", float(spread), sync_dist=True)


#: Fields stage 2 always takes from stage 1 (same folds, same hardware).
SHARED_FIELDS = ("split", "accelerator", "devices", "strategy", "num_nodes", "num_workers",
                 "progress_bar", "log_every_n_steps", "tensorboard")


def stage2_config(config1: TrainConfig, config2: TrainConfig | None, train_ages: np.ndarray
                  ) -> TrainConfig:
    """Stage-2 config (default: TSAN's, from stage 1) with the normalisation centre filled.

    Splits and hardware settings always come from stage 1 (SHARED_FIELDS).
    """
    cfg = config2 or stage2_defaults(config1)
    kwargs = dict(cfg.model.kwargs)
    if kwargs.get("normalise_age") and "age_mean" not in kwargs:
        kwargs["age_mean"] = round(float(np.mean(train_ages)), 3)
        kwargs["age_sd"] = round(float(np.std(train_ages)) or 1.0, 3)
    shared = {name: getattr(config1, name) for name in SHARED_FIELDS}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, kwargs=kwargs),
                               stage1_run="../stage1", **shared)


def check_cascade_config(config1: TrainConfig) -> None:
    """The cascade needs k-fold splits (out-of-fold stage-1 predictions)."""
    if config1.split.method != "kfold":
        raise BrainAgeError(
            f"the cascade trains stage 2 on out-of-fold stage-1 predictions, which needs "
            f"k-fold splits; split.method is {config1.split.method!r}. "
            "Fix: pass --folds K (or split.method=kfold).")


def align_stage1(table: pd.DataFrame, preds: pd.DataFrame) -> np.ndarray:
    """Stage-1 predicted age for every row of the prepared `table` (matched by scan key)."""
    def key(df: pd.DataFrame) -> pd.Series:
        parts = [df[c].astype("string").fillna("n/a") if c in df else pd.Series("n/a",
                 index=df.index, dtype="string") for c in ("participant_id", "session", "run")]
        return parts[0] + "|" + parts[1] + "|" + parts[2]

    lookup = pd.Series(preds["predicted_age"].to_numpy(float), index=key(preds).to_numpy())
    out = lookup.reindex(key(table).to_numpy()).to_numpy(float)
    if np.isnan(out).any():
        raise BrainAgeError("stage 1 did not predict every prepared scan; retrain stage 1.")
    return out


def read_predictions_of(run: Path) -> pd.DataFrame:
    """The predictions table of a finished run (typed; the run's own file)."""
    from brainage.evaluation.predictions import read_predictions

    return read_predictions(run / rf.PREDICTIONS)


def train_cascade(prepared_dir: str | Path | PreparedCohort, run_dir: str | Path,
                  config1: TrainConfig | None = None, config2: TrainConfig | None = None,
                  splits: str | Path | None = None,
                  cohort: Cohort | str | Path | None = None) -> Path:
    """Train (or resume) the two-stage cascade into ``run_dir/stage1`` and ``run_dir/stage2``.

    Args:
        prepared_dir: Output of ``brainage prepare``.
        run_dir: Cascade run folder.
        config1: Stage-1 config (k-fold splits required); default the CPU preset with
            5 folds.
        config2: Stage-2 config; default :func:`stage2_defaults` of `config1`.
        splits: Optional splits file shared by both stages.
        cohort: Ages/sex/site when the prepared folder has no ``cohort.tsv``.

    Returns:
        The run folder (``kind: cascade``).
    """
    from brainage.tasks.train import barrier, check_trainable, global_rank, train_cohort

    config1 = config1 or dataclasses.replace(
        TrainConfig(), split=dataclasses.replace(TrainConfig().split, method="kfold"))
    check_cascade_config(config1)
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared)
    run = Path(run_dir)
    if rf.start_run(run, config1):
        return run
    stage1 = run / "stage1"
    train_cohort(prepared, stage1, config1, splits)
    barrier()  # other ranks wait for rank 0's stage-1 predictions
    s1 = align_stage1(prepared.table, read_predictions_of(stage1))
    train_ages = prepared.table["age"].dropna().to_numpy(float)
    config2 = stage2_config(config1, config2, train_ages)
    train_cohort(prepared, run / "stage2", config2, stage1 / rf.SPLITS, stage1=s1,
                 task_cls=CascadeTask)
    if global_rank() == 0:
        finish_cascade(run)
    return run


def finish_cascade(run: Path) -> None:
    """Top-level files of a cascade run; ``run.json`` last."""
    import shutil

    from brainage.io import atomic_path, write_json

    stage1, stage2 = run / "stage1", run / "stage2"
    for name in (rf.PREPROCESSING, rf.SPLITS, rf.PREDICTIONS, rf.BIAS):
        if (stage2 / name).exists():
            with atomic_path(run / name) as tmp:
                shutil.copyfile(stage2 / name, tmp)
    m1, m2 = rf.read_json(stage1 / rf.METRICS), rf.read_json(stage2 / rf.METRICS)
    metrics = {"final": m2, "stage1": m1, "bin_spread": m2.get("bin_spread", {})}
    write_json(run / rf.METRICS, metrics)
    info1 = rf.read_run_info(stage1)
    card = rf.read_json(stage2 / rf.MODEL_CARD)
    card["model"] = {"kind": "cascade", "stage1": rf.read_json(stage1 / rf.MODEL_CARD)["model"],
                     "stage2": card["model"]}
    card["metrics"] = metrics
    write_json(run / rf.MODEL_CARD, card)
    rf.write_run_info(run, rf.RunInfo(
        kind="cascade", members=[], training_range=info1.training_range,
        spec_hash=info1.spec_hash, input_shape=info1.input_shape,
        stages={"stage1": "stage1", "stage2": "stage2"}))
