"""Contrastive pretraining of an encoder on a prepared cohort: ``brainage pretrain``.

``pretrain_cohort(prepared, run, config)`` trains one encoder per fold (and seed) of the
run's splits on the fold's training subjects only, with the same checks, run-folder start,
Trainer, checkpoints, resume and DDP as supervised training (:mod:`brainage.training.fit`,
:mod:`brainage.training.trainer`). Each member folder holds the encoder
(``weights.safetensors`` + ``model.json``, a registry model whose ``forward_features`` is
the encoder) and its projection head (``projection.safetensors`` + ``projection.json``).
The run's ``run.json`` says ``kind: encoder``: it predicts no age until ``brainage probe``
has fitted a linear read-out of the representation (then ``brainage predict`` works).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.data.cohort import Cohort
from brainage.data.splits_file import Splits
from brainage.errors import InputError
from brainage.io import write_json
from brainage.models import create_model, save_model
from brainage.models.io import WEIGHTS
from brainage.models.projection import ProjectionHead, has_projection, save_projection
from brainage.preprocessing.prepared import PreparedCohort
from brainage.training.config import TrainConfig, load_train_config
from brainage.training.contrastive import ContrastiveTask, contrastive_data
from brainage.training.fit import begin_run, member_config
from brainage.training.results import data_summary, model_card, training_range
from brainage.training.trainer import best_weights, fit_checkpoint, global_rank

#: Preset used when no config is given.
DEFAULT_PRESET = "contrastive"


def pretrain_cohort(prepared_dir: str | Path | PreparedCohort, run_dir: str | Path,
                    config: TrainConfig | None = None, splits: str | Path | Splits | None = None,
                    cohort: Cohort | str | Path | None = None) -> Path:
    """Pretrain (or resume) the encoders of a run and write its run folder.

    Args:
        prepared_dir: Output of ``brainage prepare``, or an opened cohort (OpenBHB arrays:
            :func:`brainage.preprocessing.openbhb_arrays.open_inputs`).
        run_dir: Run folder to create (or resume).
        config: A config with a ``contrastive`` section; default the ``contrastive`` preset.
        splits: A :class:`Splits` or a splits file; default ``config.split`` (saved once).
            Only each fold's ``train`` (and ``val``) subjects are pretrained on.
        cohort: Ages/sex/site when the prepared folder has no ``cohort.tsv``.

    Returns:
        The run folder (``kind: encoder``).
    """
    config = config or load_train_config(DEFAULT_PRESET)
    if config.init_from is not None:
        raise InputError("init_from (fine-tuning) is for `brainage train`; contrastive "
                         "pretraining starts from scratch. Fix: drop init_from.")
    run = Path(run_dir)
    with begin_run(prepared_dir, run, config, splits, ContrastiveTask,
                   cohort) as (prepared, the_splits, complete, _):
        if complete:
            warnings.warn(f"{run}: run already complete; nothing to do.", stacklevel=2)
            return run
        table = prepared.table
        done = [pretrain_member(config, table, the_splits, fold, run, repeat)
                for fold in range(the_splits.n_folds) for repeat in range(config.repeats)]
        if global_rank() == 0 and all(done):
            finish_pretraining(run, config, prepared, the_splits)
    return run


def pretrain_member(config: TrainConfig, table: pd.DataFrame, splits: Splits, fold: int,
                    run: Path, repeat: int = 0) -> bool:
    """Pretrain encoder `repeat` of fold `fold` unless it is saved; True when it is (rank 0)."""
    member = rf.member_dir(run, fold, splits.n_folds, repeat, config.repeats)
    if (member / WEIGHTS).exists() and has_projection(member):
        return True
    config = member_config(config, repeat)
    best = fit_checkpoint(config, contrastive_data(config, table, splits, fold), member,
                          ContrastiveTask)
    if best is None:  # other DDP ranks
        return False
    encoder = create_model(config.model.name, **config.model.kwargs)
    encoder.load_state_dict(best_weights(best))
    assert config.contrastive is not None  # checked before the run started
    head = ProjectionHead(encoder.num_features, config.contrastive.projection)
    head.load_state_dict(best_weights(best, "projection."))
    save_projection(head, member)
    save_model(encoder.eval(), member)  # the weights last: they mark the member finished
    return True


def finish_pretraining(run: Path, config: TrainConfig, prepared: PreparedCohort,
                       splits: Splits) -> None:
    """Preprocessing spec, model card, then ``run.json`` (``kind: encoder``)."""
    assert config.contrastive is not None
    table = prepared.table
    prepared.spec.save(run / rf.PREPROCESSING)
    info = rf.RunInfo(kind=rk.ENCODER, members=rf.member_names(splits.n_folds, config.repeats),
                      training_range=training_range(table, splits),
                      spec_hash=prepared.spec_hash, input_shape=list(prepared.shape),
                      extra={"model": config.model.name, "representation": "projection",
                             "representation_dim": config.contrastive.projection[-1]})
    card = model_card(config, info, data_summary(table, splits), prepared.spec, {}, None)
    card["training"]["contrastive"] = {"loss": card["training"]["loss"],
                                       "views": config.contrastive.views,
                                       "augment": config.contrastive.augment,
                                       "projection": config.contrastive.projection}
    card["intended_use"] = (rf.INTENDED_USE + " An encoder run predicts age only after "
                            "`brainage probe` has fitted its linear read-out.")
    write_json(run / rf.MODEL_CARD, card)
    rf.write_run_info(run, info)
