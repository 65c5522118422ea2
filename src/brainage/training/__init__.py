"""Training: configs and presets, the LightningModules, the Trainer, the TSAN cascade.

Modules, from the outside in:

* :mod:`~brainage.training.config` typed config; :mod:`~brainage.training.presets` the
  presets shipped in the package; :mod:`~brainage.training.optim` optimiser and schedule
  registries;
* :mod:`~brainage.training.checks` what is checked before a run folder is written;
* :mod:`~brainage.training.fit` ``train_cohort`` (folds, seeds, resume),
  :mod:`~brainage.training.cascade` ``train_cascade`` (TSAN's two stages) and
  :mod:`~brainage.training.pretrain` ``pretrain_cohort`` (contrastive encoders);
* :mod:`~brainage.training.trainer` Lightning's Trainer for one model;
  :mod:`~brainage.training.module` the age-regression LightningModule and
  :mod:`~brainage.training.contrastive` the contrastive one;
* :mod:`~brainage.training.results` out-of-fold predictions and the run's files;
* TGB-GAN: :mod:`~brainage.training.gan_config`, :mod:`~brainage.training.gan` (the
  LightningModule), :mod:`~brainage.training.gan_fit` ``train_gan`` (one GAN per fold) and
  :mod:`~brainage.training.synthetic` (synthetic subjects in a regressor's training folds).

Names are loaded lazily, so ``import brainage.training`` does not import Lightning.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": "brainage.training.config",
    "load_train_config": "brainage.training.config",
    "stage2_defaults": "brainage.training.config",
    "list_presets": "brainage.training.presets",
    "train_cohort": "brainage.training.fit",
    "train_cascade": "brainage.training.cascade",
    "GanConfig": "brainage.training.gan_config",
    "load_gan_config": "brainage.training.gan_config",
    "train_gan": "brainage.training.gan_fit",
    "pretrain_cohort": "brainage.training.pretrain",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
