"""Tiny synthetic prepared cohorts and configs shared by the training and inference tests.

The prepared folders are written with the cache's own writer (``CacheStore``) plus a
``cohort.tsv``, and opened with :func:`brainage.preprocessing.prepared.open_prepared`, exactly as
``brainage prepare`` output is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from brainage.data.cohort import Cohort
from brainage.preprocessing.cache import CacheStore, ScanKey
from brainage.preprocessing.prepared import COHORT_FILE, PreparedCohort, open_prepared
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.training.config import LossSpec, ModelSpec, SplitSpec, TrainConfig
from brainage.training.gan_config import GanConfig, load_gan_config

SHAPE = (20, 24, 18)  # unequal axes so axis mix-ups fail
GAN_SHAPE = (16, 24, 20)  # unequal axes, each divisible by 4 (a two-stage generator)
TINY_GAN = ["generator.kwargs.encoder_channels=[4,8]", "generator.kwargs.decoder_channels=[8,4]",
            "critic.kwargs.channels=[4,8]", "regressor.kwargs.channels=[2,4]",
            "regressor.kwargs.dense=[8]", "regressor.kwargs.feature_grid=[2,2,2]",
            "optim.lr=0.003", "critic_optim.lr=0.003", "epochs=3", "batch_size=3",
            "accumulate=2", "progress_bar=false", "tensorboard=false", "accelerator=cpu",
            "split.holdout=0.25", "samples=2"]


def spec_for_tests(shape: tuple[int, int, int] = SHAPE, **changes: object) -> PreprocessingSpec:
    """A real preprocessing spec on an 8 mm grid of `shape` (the test shape by default);
    without tissue maps unless ``tissues=True``."""
    return PreprocessingSpec.create("8mm:{}x{}x{}".format(*shape), **{"tissues": False,
                                                                      **changes})


def volume(age: float, rng: np.random.Generator, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """A head whose brightness falls and whose 'ventricles' grow with age, plus noise."""
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij")
    radius = np.sqrt(zz**2 + yy**2 + xx**2)
    t = (age - 50) / 30
    vol = (radius < 0.9) * (1.0 - 0.5 * t) - (radius < 0.3 + 0.2 * t) * 0.8
    return (vol + rng.normal(0, 0.1, shape)).astype(np.float32)


def make_prepared(root: Path, n: int = 16, seed: int = 0, no_age: tuple[int, ...] = (),
                  spec: PreprocessingSpec | None = None, write: bool = True,
                  flags: dict[int, list[str]] | None = None,
                  shape: tuple[int, int, int] = SHAPE,
                  ages: tuple[float, float] = (20, 80), tissues: bool = False) -> PreparedCohort:
    """A prepared folder of `n` scans (uniform `ages`; `no_age` rows without age), opened.

    ``write=False`` opens a folder another process already wrote (same arguments).
    ``tissues=True`` also writes GM/WM/CSF maps whose grey matter thins with age.
    """
    if write:
        spec = spec or spec_for_tests(shape, tissues=tissues)
        rng = np.random.default_rng(seed)
        ages = np.round(rng.uniform(*ages, n), 1)
        store = CacheStore(root, spec)
        store.prepare()
        rows = []
        for i, age in enumerate(ages):
            key = ScanKey(f"sub-{i:02d}")
            array = store.write_array(key, volume(age, rng, shape))
            record = {
                "participant_id": key.participant_id, "session": None, "run": None,
                "scan": key.stem, "source": f"raw/{key.stem}_T1w.nii.gz",
                "spec_hash": spec.hash, "status": "ok", "error": None,
                "flags": (flags or {}).get(i, []), "array": str(array.relative_to(root))}
            if spec.tissues:
                maps = tissue_maps(age, rng, spec)
                record["tissues"] = str(store.write_tissues(key, maps).relative_to(root))
                record["affine_det"] = round(float(rng.uniform(0.9, 1.1)), 4)
            store.write_record(key, record)
            rows.append({"participant_id": key.participant_id, "age": None if i in no_age
                         else age, "sex": "FM"[i % 2], "site": "AB"[i % 2],
                         "path": f"raw/{key.stem}_T1w.nii.gz"})
        store.build_index()
        Cohort(pd.DataFrame(rows), "synthetic").to_tsv(root / COHORT_FILE)
    return open_prepared(root)


def tissue_maps(age: float, rng: np.random.Generator, spec: PreprocessingSpec) -> np.ndarray:
    """(3, X, Y, Z) GM, WM, CSF maps in the template brain: GM thins into CSF with age."""
    from brainage.preprocessing.antsio import template_mask_on_grid

    brain = template_mask_on_grid(spec.grid).astype(np.float32)
    gm = np.clip(0.55 - 0.004 * (age - 50) + rng.normal(0, 0.03, brain.shape), 0, 0.7)
    wm = np.full(brain.shape, 0.3, dtype=np.float32)
    return (np.stack([gm, wm, 1 - gm - wm]) * brain).astype(np.float32)


def tiny_config(**overrides: object) -> TrainConfig:
    """A seconds-long CPU config: tiny SFCN (with dropout, so RNG matters), MSE, 3 epochs."""
    base = dict(
        model=ModelSpec("sfcn", {"channels": [4, 8, 4], "dropout": 0.2}),
        loss=LossSpec("mse"), epochs=3, batch_size=4, early_stopping=0, progress_bar=False,
        tensorboard=False, accelerator="cpu", repeats=1,
        split=SplitSpec(method="holdout", val=0.25, test=0.25, seed=0),
    )
    base.update(overrides)
    return TrainConfig(**base)  # type: ignore[arg-type]


def tiny_gan(*changes: str) -> GanConfig:
    """A seconds-long GAN config on the GAN_SHAPE test grid (``key=value`` changes)."""
    return load_gan_config(None, [*TINY_GAN, *changes])


def one_torch_thread() -> Iterator[None]:
    """Fixture body: tiny 3D convs run ~10x faster single-threaded on a shared, loaded CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
