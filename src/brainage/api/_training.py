"""The public API's training steps: train (one model, a stack or the TSAN cascade),
contrastive pretraining and its probe, and the config changes their options make
(:mod:`brainage.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainage.api._common import PathLike, _fs, _fs_or_none, _with_overrides

if TYPE_CHECKING:
    from brainage.training.config import TrainConfig


def train(prepared: Any, run: PathLike, config: TrainConfig | PathLike | None = None, *,
          overrides: Sequence[str] = (), folds: int | None = None, cascade: bool = False,
          stage2_config: TrainConfig | PathLike | None = None, splits: PathLike | None = None,
          cohort: Any = None, synthetic: PathLike | None = None,
          synthetic_ratio: float | None = None, init_from: PathLike | None = None,
          init_member: str | None = None) -> Path:
    """Train a model (or the TSAN cascade) on a prepared cohort and write its run folder.

    Args:
        prepared: The folder written by :func:`prepare` (or an opened ``PreparedCohort``).
        run: The run folder to create, or to resume (rerun the same call).
        config: A :class:`TrainConfig`, a preset name (``quickstart``, ``tsan``, ...;
            :func:`brainage.training.presets.list_presets`) or a YAML file. Default
            (:func:`~brainage.training.presets.default_preset`): ``tissue_ridge`` when the
            prepared scans have tissue maps (``prepare``'s default) and no network option
            or network ``--set`` is given, else the CPU network preset ``quickstart``; a
            warning says which.
        overrides: ``key=value`` changes, e.g. ``["epochs=20", "optim.lr=1e-3"]``.
        folds: K-fold cross-validation with this many folds.
        cascade: Train TSAN's two stages (stage 2 on out-of-fold stage-1 ages).
        stage2_config: The cascade's stage-2 config (default: TSAN's, from stage 1).
        splits: A splits file to use instead of making new splits.
        cohort: Ages/sex/site when the prepared folder has no ``cohort.tsv``.
        synthetic: A dataset of :func:`gan_synthesize` whose subjects join every fold's
            training set (only children of a GAN that saw none of the fold's validation or
            test subjects; :mod:`brainage.training.synthetic`). Its GAN's splits are used
            unless `splits` is given.
        synthetic_ratio: Synthetic per real training subject (default 1).
        init_from: Fine-tune: a finished run folder (or ``"bundled"``) whose weights start
            every member. The model (name and kwargs) is the source's, `prepared` must have
            the source's preprocessing recipe, soft-label age bins are extended to the new
            ages (:mod:`brainage.training.finetune`). Not with `cascade`.
        init_member: The source member that initialises every member (default its first).

    Returns:
        The run folder.
    """
    from brainage.errors import InputError
    from brainage.training.cascade import train_cascade
    from brainage.training.config import TrainConfig, load_train_config
    from brainage.training.fit import train_cohort

    if config is None:
        config = _default_config(prepared, cohort, list(overrides),
                                 cascade or init_from is not None or synthetic is not None)
    sets = list(overrides)
    if folds is not None:
        sets += ["split.method=kfold", f"split.folds={folds}"]
    elif cascade:
        sets += ["split.method=kfold"]
    if synthetic is not None and cascade:
        raise InputError("--synthetic cannot be used with --cascade (synthetic subjects have "
                         "no stage-1 predictions). Fix: drop one of them.")
    cfg = _with_overrides(config, sets) if isinstance(config, TrainConfig) \
        else load_train_config(_fs(config), sets)
    cfg = _with_synthetic(cfg, synthetic, synthetic_ratio)
    cfg = _with_init(cfg, init_from, init_member)
    if cascade:
        cfg2 = stage2_config if isinstance(stage2_config, TrainConfig) or stage2_config is None \
            else load_train_config(_fs(stage2_config))
        return train_cascade(_open_data(prepared, cohort), _fs(run), cfg, cfg2,
                             _fs_or_none(splits), cohort)
    if stage2_config is not None:
        raise InputError("stage2_config is only used with cascade=True (--cascade). "
                         "Fix: add --cascade, or drop --stage2-config.")
    if cfg.stack is not None:
        from brainage.training.stack import train_stack

        return train_stack(_open_data(prepared, cohort), _fs(run), cfg, _fs_or_none(splits),
                           cohort)
    return train_cohort(_open_data(prepared, cohort), _fs(run), cfg, _fs_or_none(splits),
                        cohort=cohort)


def _default_config(prepared: Any, cohort: Any, overrides: list[str],
                    network_only: bool) -> str:
    """The preset used without a config, said in a warning (see :func:`train`)."""
    import warnings

    from brainage.training.presets import DEFAULT_NETWORK, default_preset

    data = _open_data(prepared, cohort)
    tissues = bool(getattr(data, "spec", None) is not None and data.spec.tissues)
    name = default_preset(tissues, overrides, network_only)
    why = ("the default for scans prepared with tissue maps (the winner of nested "
           "cross-validation on real scans, docs/benchmarks.md); -c tissue_select chooses "
           "features inside each fold, -c quickstart trains the CPU network") \
        if name != DEFAULT_NETWORK else (
            "the CPU network preset (the prepared scans have no tissue maps, or a network "
            "option or --set was given)")
    warnings.warn(f"no config given: training preset {name!r}, {why}.", UserWarning,
                  stacklevel=3)
    return name


def pretrain(prepared: Any, run: PathLike, config: TrainConfig | PathLike | None = None, *,
             overrides: Sequence[str] = (), folds: int | None = None,
             splits: PathLike | None = None, cohort: Any = None, modality: str = "vbm",
             mask: PathLike | bool | None = None) -> Path:
    """Contrastive pretraining of an encoder (Barbano et al., ISBI 2023); a run of kind
    ``encoder``, which :func:`probe` scores and gives a linear age read-out.

    Args:
        prepared: A prepared folder (:func:`prepare`), OpenBHB data (per-subject arrays
            or the flat challenge arrays) or an opened ``PreparedCohort``.
        run: The run folder to create, or to resume (rerun the same call).
        config: A :class:`TrainConfig` with a ``contrastive`` section, a preset name
            (``contrastive``, the CPU default; ``contrastive_paper``) or a YAML file.
        overrides: ``key=value`` changes, e.g. ``["epochs=2", "loss.kwargs.method=yaware"]``.
        folds: One encoder per fold of k-fold splits.
        splits: A splits file to use instead of making new splits.
        cohort: Ages/sex/site when the prepared folder has no ``cohort.tsv``.
        modality: OpenBHB data: ``vbm`` or ``quasiraw``.
        mask: OpenBHB data: the mask option of
            :func:`brainage.preprocessing.openbhb_arrays.open_openbhb`.

    Returns:
        The run folder.
    """
    from brainage.training.config import TrainConfig, load_train_config
    from brainage.training.pretrain import DEFAULT_PRESET, pretrain_cohort

    sets = list(overrides) + (["split.method=kfold", f"split.folds={folds}"] if folds else [])
    cfg = _with_overrides(config, sets) if isinstance(config, TrainConfig) \
        else load_train_config(_fs(config or DEFAULT_PRESET), sets)
    return pretrain_cohort(_open_data(prepared, cohort, modality, mask), _fs(run), cfg,
                           _fs_or_none(splits),
                           cohort)


def probe(run: PathLike, data: Any, output: PathLike | None = None, *, splits: Any = None,
          split_method: str | None = None, cohort: Any = None, representation: str = "auto",
          batch_size: int = 8, device: str | None = None, cv: Any = 5,
          n_jobs: int | None = None, mask: Any = None) -> dict[str, Any]:
    """Score a run's representation under the OpenBHB challenge protocol (linear probes
    fitted on training subjects only) and store its linear age read-out in the run.

    Writes the metrics JSON (default ``RUN/probe_metrics.json``) and returns it: MAE
    internal and external, site balanced accuracy, ``score`` (MAE_ext x BAcc^0.3) and the
    two other scores of the challenge, per member and their mean
    (:func:`brainage.evaluation.probe_run.probe_run`).

    Args:
        run: A finished run (``models`` or ``encoder``).
        data: A prepared cohort, its folder, or OpenBHB data.
        output: The metrics JSON (default ``RUN/probe_metrics.json``).
        splits: The probe's splits (file or ``Splits``).
        split_method: Or a split method applied to the data (``openbhb``).
        cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``.
        representation: ``auto``, ``projection`` or ``features``.
        batch_size: Scans per forward pass of the encoder.
        device: Where the encoder runs (default: CUDA when available).
        cv: Folds (or a splitter) of the probes' grid searches.
        n_jobs: Parallel jobs of the probes' grid searches.
        mask: OpenBHB mask option (:func:`brainage.preprocessing.openbhb_arrays.open_openbhb`).
    """
    from brainage.evaluation.probe_run import probe_run

    return probe_run(_fs(run), data, _fs_or_none(output), splits=splits, split_method=split_method,
                     cohort=cohort, representation=representation, batch_size=batch_size,
                     device=device, cv=cv, n_jobs=n_jobs, mask=mask)


def _open_data(data: Any, cohort: Any = None, modality: str = "vbm",
               mask: PathLike | bool | None = None) -> Any:
    """A prepared cohort from a prepared folder, OpenBHB data or an opened cohort."""
    from brainage.preprocessing.openbhb_arrays import open_inputs

    return open_inputs(data, cohort, modality=modality,
                       mask=mask if isinstance(mask, bool) else _fs_or_none(mask))


def _with_synthetic(config: TrainConfig, path: PathLike | None, ratio: float | None
                    ) -> TrainConfig:
    """`config` with the synthetic dataset (absolute path) and ratio set, when given."""
    import dataclasses

    from brainage.training.config import SyntheticSpec

    spec = config.synthetic
    changes: dict[str, Any] = {}
    if path is not None:
        changes["path"] = str(Path(path).resolve())
    if ratio is not None:
        changes["ratio"] = float(ratio)
    if not changes:
        return config
    return dataclasses.replace(config, synthetic=SyntheticSpec(**{
        **dataclasses.asdict(spec), **changes}))


def _with_init(config: TrainConfig, init_from: PathLike | None, member: str | None
               ) -> TrainConfig:
    """`config` fine-tuned from `init_from` (an absolute path, or ``bundled``), if given."""
    import dataclasses

    from brainage.bundled_runs import BUNDLED
    from brainage.errors import InputError

    if init_from is None:
        if member is not None:
            raise InputError("--init-member is only used with --init-from. Fix: add "
                             "--init-from RUN, or drop --init-member.")
        return config
    source = BUNDLED if str(init_from) == BUNDLED else str(Path(init_from).resolve())
    return dataclasses.replace(config, init_from=source,
                               init_member=member if member is not None else config.init_member)
