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
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.data.cohort import Cohort
from brainage.errors import InputError
from brainage.evaluation.oof import bin_spread
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.training.checks import check_config, check_trainable, start_run
from brainage.training.config import STAGE2_MODEL, TrainConfig, stage2_defaults
from brainage.training.module import RegressionTask


class CascadeTask(RegressionTask):
    """Stage-2 regression: the input batch carries ``stage1_age`` (frozen, out-of-fold).

    Logs the validation per-bin spread (``val_bin_sd``: mean SD of predictions within the
    5-year bins of the stage-1 age) next to ``val_mae``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "stage1_age" not in self.model.covariates:
            raise InputError(f"the cascade's stage 2 must take the stage-1 age (e.g. "
                             f"{STAGE2_MODEL!r}); got {self.hparams['model']['name']!r}. "
                             f"Fix: set model.name: {STAGE2_MODEL} in the stage-2 config.")
        #: Width of the stage-1 age bins stage 2 refines (the model's ``step``, 5 years).
        self.bin_step = float(self.model.config.get("kwargs", {}).get("step", 5.0))
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
        spread = bin_spread(s1, pred, self.bin_step)["mean_sd"]
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


def warn_shared_fields(config1: TrainConfig, config2: TrainConfig | None) -> None:
    """Warn when a stage-2 config sets fields the cascade takes from stage 1 anyway."""
    if config2 is None:
        return
    default = TrainConfig()
    ignored = [name for name in SHARED_FIELDS
               if getattr(config2, name) != getattr(config1, name)
               and getattr(config2, name) != getattr(default, name)]
    if ignored:
        warnings.warn(f"the stage-2 config sets {', '.join(ignored)}, which the cascade takes "
                      "from stage 1 (same folds, same hardware); the stage-2 values are "
                      "ignored. Fix: remove them from the stage-2 file.", stacklevel=3)


def check_cascade_config(config1: TrainConfig, config2: TrainConfig | None = None) -> None:
    """The cascade needs k-fold splits (out-of-fold stage-1 predictions) and is not
    fine-tuned (``init_from``)."""
    if config1.init_from is not None or (config2 is not None and config2.init_from):
        raise InputError(
            "--init-from cannot be used with --cascade: fine-tuning a cascade is not "
            "supported (stage 2 would refine stage-1 ages of another model). Fix: fine-tune "
            "one stage without --cascade (e.g. --init-from RUN/stage1), or train the cascade "
            "from scratch.")
    if config1.split.method != "kfold":
        raise InputError(
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
        raise InputError("stage 1 did not predict every prepared scan. Fix: delete the run's "
                         "stage1 folder and train again.")
    return out


def read_predictions_of(run: Path) -> pd.DataFrame:
    """The predictions table of a finished run (typed; the run's own file)."""
    from brainage.data.predictions import read_predictions

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
    from brainage.training.fit import run_lock

    config1 = config1 or dataclasses.replace(
        TrainConfig(), split=dataclasses.replace(TrainConfig().split, method="kfold"))
    check_cascade_config(config1, config2)
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared, config1)
    train_ages = prepared.table["age"].dropna().to_numpy(float)
    warn_shared_fields(config1, config2)
    config2 = stage2_config(config1, config2, train_ages)
    age = float(np.median(train_ages))  # both stages, before anything is written
    check_config(config1, prepared.shape, age=age)
    check_config(config2, prepared.shape, CascadeTask, age)
    run = Path(run_dir)
    with run_lock(run):
        if start_run(run, config1):
            return run
        _train_stages(prepared, run, config1, config2, splits)
    return run


def _train_stages(prepared: PreparedCohort, run: Path, config1: TrainConfig,
                  config2: TrainConfig, splits: str | Path | None) -> None:
    """Stage 1, its out-of-fold ages, stage 2, then the cascade's own files."""
    from brainage.training.fit import train_cohort
    from brainage.training.trainer import barrier, global_rank

    stage1 = run / "stage1"
    train_cohort(prepared, stage1, config1, splits)
    barrier()  # other ranks wait for rank 0's stage-1 predictions
    s1 = align_stage1(prepared.table, read_predictions_of(stage1))
    train_cohort(prepared, run / "stage2", config2, stage1 / rf.SPLITS, stage1=s1,
                 task_cls=CascadeTask)
    if global_rank() == 0:
        finish_cascade(run)


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
    card["model"] = {"kind": rk.CASCADE, "stage1": rf.read_json(stage1 / rf.MODEL_CARD)["model"],
                     "stage2": card["model"]}
    card["metrics"] = metrics
    write_json(run / rf.MODEL_CARD, card)
    rf.write_run_info(run, rf.RunInfo(
        kind=rk.CASCADE, members=[], training_range=info1.training_range,
        spec_hash=info1.spec_hash, input_shape=info1.input_shape,
        stages={"stage1": "stage1", "stage2": "stage2"}))
