"""Train TGB-GAN generators on a prepared cohort: one per fold (or one on every subject).

``train_gan(prepared, run, config)`` is what ``brainage gan train`` calls. Each member GAN
trains on the ``train`` subjects of its fold only (never validation or test subjects); a
seeded, age-spread ``split.holdout`` share of them is left out of the gradient steps and
chooses the best epoch by its reconstruction L1 (``val_l1``; the best checkpoint is the one
saved, not the last). Every subject a member saw, held-out ones included, is written to its
``subjects.json``: synthesis and the leakage rule of ``brainage train --synthetic`` read it.
Everything is checked on the meta device before the run folder is written; an interrupted
run resumes from each member's ``last.ckpt``.

Run folder (``run.json`` kind ``gan``)::

    run.json, config.yaml, splits.json, preprocessing_spec.json, metrics.json, model_card.json
    <member>/generator/, critic/, regressor/     safetensors + model.json (best epoch)
    <member>/subjects.json                        fold, train, holdout, seen subject ids
    <member>/samples/epoch-000.png ...             real vs reconstruction, every epoch
    <member>/checkpoints/{best,last}.ckpt, logs/
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.data.datasets import ScanDataset
from brainage.data.splits_file import Splits, cohort_hash
from brainage.io import write_json
from brainage.models import save_model
from brainage.models.io import WEIGHTS
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.training.checks import check_gan_config, check_trainable, start_run
from brainage.training.datamodule import BrainAgeDataModule
from brainage.training.gan import MONITOR, GanTask
from brainage.training.gan_config import GanConfig
from brainage.training.gan_samples import SampleGrid
from brainage.training.trainer import TrainerSettings, best_weights, build_trainer, fit_quietly

SUBJECTS = "subjects.json"
NETWORKS = ("generator", "critic", "regressor")


def gan_splits(run: Path, prepared: PreparedCohort, config: GanConfig,
               splits: str | Path | Splits | None) -> Splits:
    """The members' subjects, checked against the cohort, without writing anything: given
    splits (object or file) win, then the run's own ``splits.json``, else ``config.split``
    (``all``: one fold training on every subject with an age; ``kfold``: the splits
    ``brainage train --folds K`` makes with the same seed and no validation split)."""
    from brainage.data.splits import make_splits

    cohort = prepared.cohort()
    if isinstance(splits, Splits):
        splits.check(cohort, "given splits")
        return splits
    path = Path(splits) if splits is not None else run / rf.SPLITS
    if splits is not None or path.exists():
        found = Splits.from_json(path)
        found.check(cohort, str(path))
        return found
    s = config.split
    if s.method == "kfold":
        return make_splits(cohort, "kfold", k=s.folds, seed=s.seed, val_fraction=0.0)
    table = cohort.table
    labelled = sorted(set(table.loc[table["age"].notna(), "participant_id"]))
    unlabelled = sorted(set(cohort.subjects) - set(labelled))
    return Splits("all", None, {}, [{"train": labelled}], cohort_hash(cohort.subjects),
                  unlabelled, len(cohort.subjects))


def holdout_subjects(ids: list[str], ages: pd.Series, fraction: float, seed: int) -> list[str]:
    """A seeded, age-spread ``fraction`` of ``ids``: every k-th subject in age order from a
    random start (at least one when ``fraction > 0`` and there are two or more)."""
    n = len(ids)
    m = int(round(fraction * n))
    m = min(max(m, 1 if fraction > 0 and n >= 2 else 0), n - 1) if n else 0
    if m == 0:
        return []
    order = sorted(ids, key=lambda s: (float(ages[s]), s))
    start = np.random.default_rng(seed).uniform(0, n / m)
    picks = sorted({int(start + i * n / m) % n for i in range(m)})
    return sorted(order[i] for i in picks)


def member_subjects(table: pd.DataFrame, splits: Splits, fold: int, config: GanConfig
                    ) -> dict[str, Any]:
    """``{"fold", "train", "holdout", "seen"}``: whom member `fold` trains and selects on."""
    ids = sorted(set(splits.subjects("train", fold)))
    ages = table.dropna(subset=["age"]).groupby("participant_id")["age"].min()
    held = holdout_subjects([s for s in ids if s in ages.index], ages, config.split.holdout,
                            config.split.seed + 1000 * fold)
    train = [s for s in ids if s not in set(held)]
    return {"fold": fold, "train": train, "holdout": held, "seen": ids}


def member_data(table: pd.DataFrame, subjects: dict[str, Any], config: GanConfig
                ) -> BrainAgeDataModule:
    """Loaders over the scans (with an age) of a member's training and held-out subjects."""
    rows = table[table["age"].notna()]
    train = ScanDataset.from_table(rows[rows["participant_id"].isin(subjects["train"])])
    held = rows[rows["participant_id"].isin(subjects["holdout"])]
    val = ScanDataset.from_table(held) if len(held) else None
    return BrainAgeDataModule(train, val, config.batch_size, config.num_workers, config.seed)


def fit_gan_member(config: GanConfig, data: BrainAgeDataModule, member: Path,
                   callbacks: list[L.Callback] | None = None) -> dict[str, Any]:
    """Train one GAN (resuming from ``last.ckpt``) and save its best epoch's networks.

    Returns:
        The member's metrics: best epoch, its ``val_l1`` (None without held-out subjects:
        then the last epoch is kept), the criterion.
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    has_val = data.val_set is not None and len(data.val_set) > 0
    task = GanTask.from_config(config, float(np.nanmean(data.train_set.age)))
    callbacks = list(callbacks or [])
    if config.samples:
        callbacks.append(SampleGrid.from_dataset(data.val_set if has_val else data.train_set,
                                                 config.samples, member / "samples"))
    trainer = build_trainer(TrainerSettings.of(config), member, MONITOR if has_val else None,
                            callbacks)
    best = fit_quietly(trainer, task, data, member)
    if not has_val:  # nothing held out: the "best" checkpoint is just the latest
        best = None
        warnings.warn(f"{member}: no held-out subjects (split.holdout=0 or too few subjects); "
                      "the last epoch's networks are kept.", stacklevel=2)
    ckpt = best or member / "checkpoints" / "last.ckpt"
    for name in NETWORKS:
        net = getattr(task, name)
        if net is not None:
            net.load_state_dict(best_weights(ckpt, f"{name}."))
            save_model(net.eval(), member / name)
    epoch = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
    score = trainer.checkpoint_callback.best_model_score if best is not None else None
    return {"best_epoch": epoch, MONITOR: None if score is None else float(score),
            "criterion": f"lowest {MONITOR} (held-out reconstruction L1)" if has_val
            else "last epoch (nothing held out)"}


def train_gan(prepared_dir: str | Path | PreparedCohort, run_dir: str | Path,
              config: GanConfig | None = None, splits: str | Path | Splits | None = None,
              cohort: Any = None) -> Path:
    """Train (or resume) a TGB-GAN run on a prepared cohort and write its run folder.

    Args:
        prepared_dir: Output of ``brainage prepare`` (e.g. on the ``gan`` grid).
        run_dir: Run folder to create (or resume).
        config: GAN config; default the published recipe (:class:`GanConfig`).
        splits: A :class:`Splits` or splits file: one GAN per fold, trained on its
            ``train`` subjects; default ``config.split``.
        cohort: Ages of the scans when the prepared folder has no ``cohort.tsv``.

    Returns:
        The run folder.
    """
    config = config or GanConfig()
    run = Path(run_dir)
    prepared = open_prepared(prepared_dir, cohort)
    check_trainable(prepared)
    check_gan_config(config, prepared.shape)
    the_splits = gan_splits(run, prepared, config, splits)
    from brainage.training.fit import run_lock

    with run_lock(run):  # one process per GAN run folder, as for `train`
        return _train_gan_locked(run, config, prepared, the_splits, splits)


def _train_gan_locked(run: Path, config: GanConfig, prepared: PreparedCohort,
                      the_splits: Splits, splits: Any) -> Path:
    """The body of :func:`train_gan`, run while this process holds the run's lock."""
    if start_run(run, config):
        warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
        return run
    if splits is not None or not (run / rf.SPLITS).exists():
        the_splits.to_json(run / rf.SPLITS)
    table = prepared.table
    metrics = []
    for fold in range(the_splits.n_folds):
        member = rf.member_dir(run, fold, the_splits.n_folds)
        subjects = member_subjects(table, the_splits, fold, config)
        metrics.append(train_member(config, table, subjects, member))
    finish_gan_run(run, config, prepared, the_splits, metrics)
    return run


def train_member(config: GanConfig, table: pd.DataFrame, subjects: dict[str, Any],
                 member: Path) -> dict[str, Any]:
    """Train one member unless its networks and ``subjects.json`` are already saved."""
    done = member / SUBJECTS
    if done.is_file() and (member / "generator" / WEIGHTS).is_file():
        return rf.read_json(done)["metrics"]
    metrics = fit_gan_member(config, member_data(table, subjects, config), member)
    write_json(done, {**subjects, "metrics": metrics})
    return metrics


def run_id(run: Path, members: list[str]) -> str:
    """``gan-<12 hex>``: sha256 of the members' generator weights (names the exact GAN)."""
    h = hashlib.sha256()
    for m in members:
        h.update((run / m / "generator" / WEIGHTS).read_bytes())
    return "gan-" + h.hexdigest()[:12]


def finish_gan_run(run: Path, config: GanConfig, prepared: PreparedCohort, splits: Splits,
                   metrics: list[dict[str, Any]]) -> None:
    """Write metrics, spec, model card, then ``run.json`` (marks the run complete)."""
    from brainage.config import to_dict

    members = rf.member_names(splits.n_folds)
    seen = {s for m in members for s in rf.read_json(run / m / SUBJECTS)["seen"]}
    ages = prepared.table.loc[prepared.table["participant_id"].isin(seen), "age"].dropna()
    ident = run_id(run, members)
    write_json(run / rf.METRICS, {"members": dict(zip(members, metrics, strict=True))})
    prepared.spec.save(run / rf.PREPROCESSING)
    info = rf.RunInfo(kind=rk.GAN, members=members,
                      training_range=[float(ages.min()), float(ages.max())],
                      spec_hash=prepared.spec_hash, input_shape=list(prepared.shape),
                      extra={"model": config.generator.name, "run_id": ident,
                             "prepared": str(prepared.root.resolve())})
    write_json(run / rf.MODEL_CARD, {
        "format": "brainage-model-card", "brainage_version": rf.__version__,
        "environment": rf.environment(),
        "model": {"name": "TGB-GAN", "kind": rk.GAN, "run_id": ident, "members": members,
                  "networks": {n: to_dict(getattr(config, n)) for n in NETWORKS}},
        "training_data": {"subjects_seen": len(seen), "age_range": info.training_range,
                          "splits": {"method": splits.method, "folds": splits.n_folds}},
        "training": {"objective": to_dict(config.objective), "optim": to_dict(config.optim),
                     "critic_optim": to_dict(config.critic_optim),
                     "scheduler": to_dict(config.scheduler), "epochs": config.epochs,
                     "effective_batch": config.batch_size * config.accumulate,
                     "seed": config.seed},
        "metrics": {"members": dict(zip(members, metrics, strict=True))},
        "intended_use": "Research use only: synthetic, age-labelled training brains and "
                        "age-change maps. Not real subjects; never evaluate on them.",
    })
    rf.write_run_info(run, info)
