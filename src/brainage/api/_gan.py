"""The public API's TGB-GAN steps: train the generators, synthesise a dataset, draw the
change map (:mod:`brainage.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainage.api._common import PathLike, _fs, _fs_or_none, _prepared_arg, _with_overrides

if TYPE_CHECKING:
    from brainage.preprocessing.prepared import PreparedCohort
    from brainage.training.gan_config import GanConfig


def gan_train(prepared: Any, run: PathLike, config: GanConfig | PathLike | None = None, *,
              overrides: Sequence[str] = (), folds: int | None = None,
              splits: PathLike | None = None, cohort: Any = None) -> Path:
    """Train TGB-GAN generators (Li et al. 2021) on a prepared cohort; write a GAN run.

    Args:
        prepared: A prepared folder (e.g. ``--grid gan``, or a coarse cube such as
            ``6mm:32x32x32`` with ``--normalisation minmax``).
        run: The GAN run folder to create, or to resume.
        config: A :class:`~brainage.training.gan_config.GanConfig`, a GAN preset
            (``tgbgan``, ``tgbgan_no_task``, ``tgbgan_cpu``, ``tgbgan_cpu_no_task``) or a
            YAML file; default the published recipe.
        overrides: ``key=value`` changes, e.g. ``["epochs=5", "objective.beta=0"]``.
        folds: One GAN per fold of K-fold splits (what ``train(..., folds=K)`` makes with
            the same seed), each trained on its fold's training subjects only.
        splits: A splits file: one GAN per fold, on its ``train`` subjects.
        cohort: Ages when the prepared folder has no ``cohort.tsv``.

    Returns:
        The run folder (``run.json`` kind ``gan``).
    """
    from brainage.training.gan_config import GanConfig, load_gan_config
    from brainage.training.gan_fit import train_gan

    sets = list(overrides) + (["split.method=kfold", f"split.folds={folds}"] if folds else [])
    cfg = _with_overrides(config, sets) if isinstance(config, GanConfig) \
        else load_gan_config(_fs_or_none(config), sets)
    return train_gan(prepared, _fs(run), cfg, _fs_or_none(splits), cohort=cohort)


def gan_synthesize(gan_run: PathLike, out: PathLike, *,
                   prepared: PathLike | PreparedCohort | None = None, cap: int = 50,
                   seed: int = 0, bin_width: float = 1.0, reuse_pairs: bool = False,
                   batch_size: int = 4, device: str | None = None, change_map: bool = True,
                   overwrite: bool = False) -> Path:
    """Synthetic, age-labelled brains from a GAN run: within-bin latent interpolation.

    The dataset is a prepared cohort plus BIDS derivatives; add it to training with
    ``train(..., synthetic=out)`` (:func:`brainage.synthesis.synthesize.synthesize`).

    Args:
        gan_run: Folder of :func:`gan_train`.
        out: Dataset folder to write (must not hold a dataset unless `overwrite`).
        prepared: The prepared cohort the GAN was trained on (default: the recorded one).
        cap: Target subjects per age bin, real + synthetic
            (:func:`brainage.synthesis.plan.plan_synthesis`).
        seed: Seed of the plan (pairs and weights).
        bin_width: Age-bin width in years (1 in the paper).
        reuse_pairs: Deal a bin's pairs again once used up (see ``plan_synthesis``).
        batch_size: Latents decoded at once.
        device: Where the generators run (default CPU).
        change_map: Also write the young -> old change map into ``OUT/change_map``.
        overwrite: Replace an existing dataset at `out`.

    Returns:
        The dataset folder.
    """
    from brainage.synthesis.synthesize import synthesize

    return synthesize(_fs(gan_run), _fs(out), prepared=_prepared_arg(prepared), cap=cap, seed=seed,
                      bin_width=bin_width, reuse_pairs=reuse_pairs, batch_size=batch_size,
                      device=device, change_map=change_map, overwrite=overwrite)


def gan_change_map(gan_run: PathLike, out: PathLike, *,
                   prepared: PathLike | PreparedCohort | None = None, fraction: float = 0.25,
                   steps: int = 5, device: str | None = None) -> Path:
    """The voxelwise change of decoded brains from young to old latents, as NIfTI + figure
    (:func:`brainage.synthesis.change_map_io.change_map`).

    Args:
        gan_run: Folder of :func:`gan_train`.
        out: Folder to write.
        prepared: The prepared cohort the GAN was trained on (default: the recorded one).
        fraction: The youngest and oldest fraction of subjects whose latents are averaged
            (0 < fraction <= 0.5).
        steps: Points decoded from the young to the old mean latent (at least 2).
        device: Where the generators run (default CPU).

    Returns:
        The folder written.
    """
    from brainage.synthesis.change_map_io import change_map

    return change_map(_fs(gan_run), _fs(out), prepared=_prepared_arg(prepared),
                      fraction=fraction, steps=steps, device=device)
