"""The public Python API: one function per step of the pipeline, as the CLI runs them.

Each ``brainage`` command is a thin shell over one of these (it parses options, calls the
function, prints the result), and ``import brainage`` exposes them lazily::

    brainage.simulate -> brainage.load_cohort -> brainage.prepare -> brainage.train
    -> brainage.predict(inputs, run) -> brainage.evaluate
    -> brainage.explain / brainage.report

Contrastive regression: brainage.pretrain -> brainage.probe -> brainage.predict (a probed
encoder run predicts like any run). TGB-GAN augmentation: brainage.gan_train ->
brainage.gan_synthesize (and brainage.gan_change_map) -> brainage.train(..., synthetic=...).

Heavy libraries (torch, ANTsPy, Lightning) load inside the functions, on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

    from brainage.bidsapp.group import GroupSummary
    from brainage.bidsapp.participant import ParticipantSummary
    from brainage.data.cohort import Cohort
    from brainage.data.sources import CohortReport
    from brainage.data.splits_file import Splits
    from brainage.evaluation.pipeline import EvaluationResult
    from brainage.inference.explain import Explanation, FailedScan
    from brainage.inference.selftest import SelftestResult
    from brainage.preprocessing.grids import Grid
    from brainage.preprocessing.prepared import PreparedCohort
    from brainage.preprocessing.runner import RunSummary
    from brainage.preprocessing.spec import PreprocessingSpec
    from brainage.progress import ProgressArg
    from brainage.training.config import TrainConfig
    from brainage.training.gan_config import GanConfig

PathLike = str | os.PathLike[str]


def _fs(path: PathLike) -> str:
    """`path` as the ``str`` the layers below take (they accept ``str | Path``)."""
    return os.fspath(path)


def _fs_or_none(path: PathLike | None) -> str | None:
    return None if path is None else os.fspath(path)


def _prepared_arg(prepared: PathLike | PreparedCohort | None) -> str | PreparedCohort | None:
    """A prepared folder as ``str``; an opened cohort (or None) unchanged."""
    if prepared is None or isinstance(prepared, str | os.PathLike):
        return _fs_or_none(prepared)
    return prepared


def simulate(out: PathLike, n: int = 200, sites: int = 4, seed: int = 0, *, jobs: int = 1,
             overwrite: bool = False, masks: bool = False,
             progress: Callable[[int, int], None] | None = None, voxel_size: float = 2.0,
             sessions: int = 1, interval: float = 2.0, age_min: float = 20.0,
             age_max: float = 85.0, confound: float = 0.3, gap_sd: float = 3.0,
             patient_fraction: float = 0.25, patient_effect: float = 5.0,
             patient_rate: float = 1.5, site_effects: float = 1.0, variability: float = 1.0,
             interp_order: int = 1, site_contrast: float = 1.0, site_intensity: float = 1.0,
             site_noise: float = 1.0, site_bias: float = 1.0,
             site_ages: str | Sequence[tuple[float, float]] | None = None) -> Path:
    """Simulate a synthetic aging cohort (MNI152-based T1w heads) as a BIDS dataset.

    Every setting from `voxel_size` on is a field of
    :class:`brainage.data.simulate.SimulationConfig` (same default, validated there).

    Args:
        out: The BIDS folder to write (built under a temporary name, then renamed).
        n: Subjects.
        sites: Scanner sites; subject ``k`` is scanned at site ``k % sites``.
        seed: Seed; the same seed gives identical files whatever `jobs`.
        jobs: Worker processes.
        overwrite: Replace an existing `out`.
        masks: Also write the true brain masks to ``derivatives/simulation``.
        progress: Called as ``progress(done, total)`` after each subject.
        voxel_size: Template-space resolution in mm (1 to 8).
        sessions: Sessions per subject (``ses-1`` ... ``ses-K`` when more than one).
        interval: Years between sessions.
        age_min: Youngest chronological age at the first session.
        age_max: Oldest chronological age at the first session.
        confound: 0: every site samples the whole age range; 1: each site its own
            disjoint slice of it (site and age fully confounded).
        gap_sd: Standard deviation (years) of the individual brain-age gap.
        patient_fraction: Probability that a subject is in the ``patient`` group.
        patient_effect: Years added to a patient's brain age.
        patient_rate: Brain-age years per calendar year for patients between sessions.
        site_effects: Strength of scanner effects (0: no noise, bias, gamma or blur).
        variability: Strength of inter-subject anatomical variability (0: none).
        interp_order: Spline order of the single resampling (1 linear; 3 cubic).
        site_contrast: Multiplies the spread of the per-site gamma (contrast).
        site_intensity: Multiplies the spread of the per-site intensity scale.
        site_noise: Multiplies the per-site Rician noise SD.
        site_bias: Multiplies the per-site bias-field amplitude.
        site_ages: One ``(low, high)`` first-session age range per site, or the text
            ``"6-20,20-40,60-85"``; replaces `age_min`, `age_max` and `confound`.

    Returns:
        The dataset folder (ground truth in ``derivatives/simulation``).
    """
    from brainage.data.simulate import make_config, write_cohort

    config = make_config(
        n=n, sites=sites, seed=seed, voxel_size=voxel_size, sessions=sessions,
        interval=interval, age_min=age_min, age_max=age_max, confound=confound,
        gap_sd=gap_sd, patient_fraction=patient_fraction, patient_effect=patient_effect,
        patient_rate=patient_rate, site_effects=site_effects, variability=variability,
        interp_order=interp_order, site_contrast=site_contrast, site_intensity=site_intensity,
        site_noise=site_noise, site_bias=site_bias, site_ages=site_ages)
    return write_cohort(out, config, jobs=jobs, overwrite=overwrite, masks=masks,
                        progress=progress)


def load_cohort(source: PathLike, *, format: str | None = None,
                participant_labels: Sequence[str] | None = None, sex_codes: str | None = None,
                require_site: bool = False, check_images: bool = True, modality: str = "vbm",
                image_dir: PathLike | None = None) -> Cohort:
    """Read and validate a cohort (BIDS folder, table, OpenBHB folder) into a :class:`Cohort`.

    Every bad row is reported at once (:func:`brainage.data.sources.load_cohort`).

    Args:
        source: BIDS folder, CSV/TSV table, OpenBHB folder or ``.npy``, or TSAN table/folder.
        format: ``bids``, ``table``, ``openbhb`` or ``tsan``; detected when None (``tsan``
            is never detected: ask for it).
        participant_labels: Participants to keep, with or without ``sub-``.
        sex_codes: Convention for numeric sex codes, e.g. ``"0=female"``.
        require_site: Every scan must have a site (for site-aware splits).
        check_images: Check every image's header (never its voxels). When False, paths
            are not even checked for existence.
        modality: OpenBHB per-subject arrays: ``vbm`` (grey matter) or ``quasiraw``.
        image_dir: TSAN: folder searched for the images (default: the table's folder).

    Raises:
        ValidationError: every problem found, each with file, row, value and fix.
    """
    from brainage.data.sources import load_cohort as _load

    return _load(Path(source), format=format, participant_labels=participant_labels,
                 sex_codes=sex_codes, require_site=require_site, check_images=check_images,
                 modality=modality, image_dir=_fs_or_none(image_dir))


def prepare(source: Cohort | PathLike, out: PathLike,
            spec: PreprocessingSpec | PathLike | None = None, *, jobs: int | None = 1,
            shard: tuple[int, int] | None = None,
            participant_labels: Sequence[str] | None = None, threads: int | None = None,
            itk_threads: int = 1, progress: ProgressArg = False, format: str | None = None,
            grid: str | Grid = "tsan", n4: bool = True, skullstrip: str = "refined",
            nonlinear: bool = False, normalisation: str | None = None, tissues: bool = True,
            params: Mapping[str, Any] | None = None) -> RunSummary:
    """Preprocess every scan of a cohort into `out`: MNI152 grid, brain mask, QC, cache,
    BIDS derivatives. Reruns skip finished scans; a failed scan fails alone.

    Args:
        source: A :class:`Cohort` or anything :func:`load_cohort` reads.
        out: The prepared folder.
        spec: A :class:`PreprocessingSpec`, the path of a saved one (e.g. a run folder's
            ``preprocessing_spec.json``), or None for a new spec from `grid`, `n4`,
            `skullstrip`, `nonlinear`, `normalisation`, `tissues` and `params` (which are
            ignored when a spec is given).
        jobs: Scans processed in parallel, in worker processes (None: every core).
        shard: ``(i, n)``: process only the i-th of n shards (cluster array jobs).
        participant_labels: Only these participants.
        threads: Torch threads per scan (deepbet).
        itk_threads: ANTs/ITK threads per scan; 1 (default) makes reruns byte-identical,
            more is faster but not reproducible (docs/preprocessing.md).
        progress: False (default): quiet; True: a bar on a terminal (else log lines)
            and a summary line on stderr; a callable: ``progress(done, total)`` after each
            scan (:mod:`brainage.progress`).
        format: Force the source format.
        grid: Preset name (``tsan``, ``gan``, ``4mm``, ...), a custom grid string such as
            ``6mm:30x36x30``, or a :class:`Grid`.
        n4: Bias-field correction on or off.
        skullstrip: ``refined``, ``template`` or ``deepbet``.
        nonlinear: Add SyN after the affine registration.
        normalisation: Override the grid's default intensity normalisation.
        tissues: Also write tissue probability maps (the default model reads them).
        params: Overrides of :data:`brainage.preprocessing.spec.DEFAULT_PARAMS` entries.

    Returns:
        The run summary (counts, failures, flags; ``.format()`` prints it).
    """
    from brainage.data.cohort import Cohort
    from brainage.preprocessing import PreprocessingSpec, run_cohort

    if spec is None:
        spec = PreprocessingSpec.create(grid, n4=n4, skullstrip=skullstrip, nonlinear=nonlinear,
                                        normalisation=normalisation, tissues=tissues,
                                        **dict(params or {}))
    elif not isinstance(spec, PreprocessingSpec):
        spec = PreprocessingSpec.load(_fs(spec)).with_current_libraries()
    # headers are checked per scan by the pipeline, so one bad image fails alone
    cohort = source if isinstance(source, Cohort) else load_cohort(
        source, format=format, check_images=False)
    return run_cohort(cohort, _fs(out), spec, jobs=jobs, shard=shard,
                      participant_labels=list(participant_labels) if participant_labels
                      else None, threads=threads, progress=progress, itk_threads=itk_threads)


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


def _with_overrides(config: Any, sets: Sequence[str]) -> Any:
    """`config` (any config dataclass) with ``key=value`` overrides applied (checked as at
    load time)."""
    if not sets:
        return config
    from brainage.config import from_dict, merge, parse_overrides, to_dict

    return from_dict(type(config), merge(to_dict(config), parse_overrides(sets)), "config")


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
        cap: Target subjects per age bin, real + synthetic.
        seed: Seed of the plan (pairs and weights).
        bin_width: Age-bin width in years (1 in the paper).
        reuse_pairs: Deal a bin's pairs again once used up.
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


def predict(inputs: PathLike | PreparedCohort | Sequence[PathLike],
            model: PathLike | None = None, *, jobs: int | None = 1,
            progress: ProgressArg = False, threads: int | None = None,
            cohort: Cohort | PathLike | None = None, dicom_series: str | None = None,
            device: str | None = None, batch_size: int = 8,
            allow_library_drift: bool = False) -> pd.DataFrame:
    """Brain age of new scans, whatever form they come in: ``brainage predict`` in Python.

    Raw scans are preprocessed with the model's own spec; prepared inputs must have been
    prepared with it (:meth:`brainage.Predictor.predict`, which this calls once per input
    group, and :mod:`brainage.inference.many`, which runs the scans in `jobs` worker
    processes with bit-identical results whatever `jobs`).

    Args:
        inputs: One input or a list of them: NIfTI files, DICOM folders, a BIDS folder or a
            cohort table (each scan preprocessed), a prepared folder (of :func:`prepare`),
            OpenBHB arrays, or an opened ``PreparedCohort``. In a list, the raw scans
            (NIfTI files, DICOM folders) are predicted together and every other entry on
            its own; the rows come in that order.
        model: A run folder (of :func:`train`, :func:`probe`, ...); None or ``"bundled"``:
            the model shipped with brainage (a warning says what it is valid for).
        jobs: Worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines and a summary line on stderr; a
            callable ``fn(done, total)``.
        threads: Torch threads per worker (default: cores / jobs).
        cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``.
        dicom_series: SeriesNumber or SeriesInstanceUID of the series to use in each DICOM
            folder (default: the T1w one).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        batch_size: Scans per forward pass.
        allow_library_drift: Accept prepared inputs whose spec differs only in library
            versions (with a warning).

    Returns:
        One row per scan: ``participant_id``, ``session``, ``age``, ``predicted_age``,
        ``gap`` (+ bias-corrected columns, interval, ensemble SD, QC and
        out-of-distribution flags); a scan that could not be predicted has its reason in
        ``error``. ``table.attrs`` holds ``run_dir`` (the model used) and ``notes`` (what
        the predictions lack, each also warned about).

    Raises:
        BrainAgeError: no such model (or none bundled), nothing to predict, inputs
            prepared with another spec, or no scan could be predicted.
    """
    import warnings

    from brainage.data.cohort import Cohort
    from brainage.errors import InputError
    from brainage.inference.many import concat
    from brainage.inference.outputs import NoteWarning
    from brainage.inference.predictor import Predictor

    run = _model_dir(model)
    groups = _input_groups(inputs)
    if not groups:
        raise InputError(f"nothing to predict with {run}. Fix: give scans, a cohort or a "
                         "prepared folder.")
    if model is None or _fs(model) == "bundled":
        from brainage.bundled_runs import validity_note

        note = validity_note(run)
        if note is not None:
            warnings.warn(f"using the {note}", NoteWarning, stacklevel=2)
    predictor = Predictor.from_run(run, device=device, batch_size=batch_size,
                                   allow_library_drift=allow_library_drift)
    any_raw = any(isinstance(g, list) for g in groups)
    tables = []
    for group in groups:
        is_raw = isinstance(group, list)
        tables.append(predictor.predict(
            group, None if is_raw or cohort is None
            else cohort if isinstance(cohort, Cohort) else _fs(cohort),
            dicom_series=dicom_series if is_raw or not any_raw else None,
            jobs=jobs, progress=progress, threads=threads))
    table = tables[0] if len(tables) == 1 else concat(tables).reset_index(drop=True)
    table.attrs.update(run_dir=predictor.run_dir, notes=list(predictor.notes))
    return table


def _model_dir(model: PathLike | None) -> Path:
    """The run folder `model` names: itself, or the bundled model for None/``bundled``."""
    from brainage.bundled_runs import BUNDLED, default_model_dir
    from brainage.errors import NotFoundError

    if model is not None and _fs(model) != BUNDLED:
        return Path(model)
    found = default_model_dir()
    if found is None:
        raise NotFoundError("this installation has no bundled model. Fix: pass model=RUN, "
                            "a run folder written by `brainage train`.")
    return found


def _input_groups(inputs: PathLike | PreparedCohort | Sequence[PathLike]
                  ) -> list[list[Path] | Path | PreparedCohort]:
    """The calls of :meth:`Predictor.predict` `inputs` need: every raw scan together (a
    list, at the place of the first), each other input alone."""
    from brainage.inference.predictor import is_raw_scan
    from brainage.preprocessing.prepared import PreparedCohort

    if isinstance(inputs, PreparedCohort):
        return [inputs]
    items = [Path(inputs)] if isinstance(inputs, str | os.PathLike) \
        else [Path(p) for p in inputs]
    raw = [p for p in items if is_raw_scan(p)]
    groups: list[list[Path] | Path | PreparedCohort] = []
    for item in items:
        if item not in raw:
            groups.append(item)
        elif item == raw[0]:
            groups.append(raw)
    return groups


def evaluate(predictions: PathLike, output: PathLike, *, correction: PathLike | None = None,
             method: str | None = None, fit_on: str | None = None, per_site: bool = False,
             n_boot: int = 1000, seed: int = 0, folds: int = 5, reference: str = "control",
             n_splits: int = 100) -> EvaluationResult:
    """Metrics with bootstrap confidence intervals, bias correction, per set/site/age bin.

    Writes the evaluation folder and returns its result (``format_summary`` prints it;
    :func:`brainage.evaluation.pipeline.run_evaluation`).

    Args:
        predictions: Predictions TSV (of ``brainage train``, ``predict`` or :func:`predict`).
        output: Folder to (re)create; refused if it holds files other than a previous
            evaluation.
        correction: Run folder or JSON file with a fitted bias correction.
        method: Correction method when fitting here (`fit_on`) or cross-fitting.
        fit_on: Fit the correction on the rows matching ``COLUMN==VALUE`` (e.g.
            ``group==control``).
        per_site: One correction per site (when fitting here or cross-fitting).
        n_boot: Bootstrap resamples for intervals.
        seed: Seed of bootstrap, cross-fitting folds and classification splits.
        folds: Cross-fitting folds.
        reference: Reference group for the group analysis.
        n_splits: Stratified shuffle splits of the group classification.

    Raises:
        BrainAgeError: invalid input or options; nothing is written.
    """
    from brainage.evaluation.pipeline import run_evaluation

    return run_evaluation(predictions, output, correction=correction, method=method,
                          fit_on=fit_on, per_site=per_site, n_boot=n_boot, seed=seed,
                          folds=folds, reference=reference, n_splits=n_splits)


def explain(run: PathLike, scans: Sequence[PathLike], output: PathLike, method: str = "auto",
            *, steps: int = 32, batch: int = 4, patch: int = 8, stride: int | None = None,
            sex: str | None = None, device: str | None = None,
            dicom_series: str | None = None, jobs: int | None = 1,
            progress: ProgressArg = False, threads: int | None = None
            ) -> list[Explanation | FailedScan]:
    """Explanation maps (template and native space) and region tables for raw scans.

    ``auto``: integrated gradients for networks, exact linear contributions for linear
    classical models (ridge, gpr); a stack sums its members' maps with its weights
    (:func:`brainage.inference.explain.explain_scan`, per scan).

    Args:
        run: The run folder.
        scans: Raw NIfTI files or DICOM folders (prepared with the run's spec), or
            prepared ``.npy`` arrays.
        output: The derivatives folder to write into.
        method: ``auto``, ``ig`` (integrated gradients), ``occlusion``, ``smoothgrad`` or
            ``linear`` (classical models only).
        steps: Path points (IG) or noisy samples (SmoothGrad).
        batch: Volumes per forward/backward pass (memory).
        patch: Occlusion patch size in grid voxels.
        stride: Occlusion stride (default: the patch size).
        sex: ``"F"``/``"M"`` for models that take sex (default unknown, as in prediction).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        dicom_series: SeriesNumber or UID of each DICOM folder's series (default: its T1w
            one).
        jobs: Worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines; a callable ``fn(done, total)``.
        threads: Torch threads per worker (default: cores / jobs).

    Returns:
        One entry per scan, in order: an :class:`Explanation`, or a ``FailedScan`` with
        the reason (the others go on).
    """
    from brainage.errors import InputError
    from brainage.inference.explain import METHODS, explain_scans

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}. "
                         "Fix: e.g. --method auto.")
    if sex not in (None, "F", "M"):
        raise InputError(f"sex must be F or M, got {sex!r}. Fix: --sex F or M.")
    return explain_scans(_fs(run), [Path(s) for s in scans], _fs(output), jobs=jobs, progress=progress,
                         threads=threads, method=method, steps=steps, batch=batch,
                         patch=patch, stride=stride, sex=sex, device=device,
                         dicom_series=dicom_series)


def report(source: PathLike, output: PathLike, *, qc: PathLike | None = None,
           title: str | None = None, n_boot: int = 1000, seed: int = 0) -> Path:
    """One self-contained HTML page for a run or evaluation folder (figures embedded;
    :func:`brainage.reporting.report.write_report`).

    Args:
        source: Run folder, evaluation folder, or run folder with an ``evaluation/``.
        output: HTML file to write (replaced atomically).
        qc: Optional QC table (``participant_id``, ``session``, flags).
        title: Page title (default: from the folder name).
        n_boot: Bootstrap resamples when metrics have to be computed here.
        seed: Seed of that bootstrap.

    Returns:
        The written file.
    """
    from brainage.reporting.report import write_report

    return write_report(source, output, qc=qc, title=title, n_boot=n_boot, seed=seed)


def bids_participant(bids_dir: PathLike, output_dir: PathLike, model: PathLike | None = None,
                     participant_labels: Sequence[str] | None = None, *, explain: bool = True,
                     method: str = "auto", steps: int = 32, device: str | None = None,
                     batch_size: int = 8, threads: int | None = None, jobs: int | None = 1,
                     progress: ProgressArg = False) -> ParticipantSummary:
    """BIDS-App participant level: prepare, predict and explain each subject into
    ``output_dir/sub-<label>/`` (:func:`brainage.bidsapp.bids_participant`; parallel
    processes into one folder are safe).

    Args:
        bids_dir: The BIDS dataset.
        output_dir: The derivatives folder (shared by every participant-level process).
        model: A run folder of :func:`train`; default the bundled model.
        participant_labels: Only these participants (with or without ``sub-``).
        explain: Also write explanation maps.
        method: The explanation method (as in :func:`explain`).
        steps: Explanation steps (as in :func:`explain`).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        batch_size: Scans per forward pass.
        threads: Torch threads per worker.
        jobs: Subjects in parallel worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines; a callable ``fn(done, total)``.

    Returns:
        The summary (``.format()`` prints it).
    """
    from brainage.bidsapp import bids_participant as _participant

    summary: ParticipantSummary = _participant(
        bids_dir, output_dir, model, participant_labels, explain=explain, method=method,
        steps=steps, device=device, batch_size=batch_size, threads=threads, jobs=jobs,
        progress=progress)
    return summary


def bids_group(bids_dir: PathLike, output_dir: PathLike,
               participant_labels: Sequence[str] | None = None, *,
               correction: PathLike | None = None, method: str | None = None,
               fit_on: str | None = None, per_site: bool = False, n_boot: int = 1000,
               seed: int = 0, folds: int = 5, reference: str = "control",
               n_splits: int = 100) -> GroupSummary:
    """BIDS-App group level: collate the subjects' predictions, evaluate and report into
    ``output_dir/group`` (:func:`brainage.bidsapp.bids_group`). The evaluation options are
    those of :func:`evaluate` (e.g. ``fit_on="group==control"`` fits the bias correction on
    the controls).

    Returns:
        The summary (``.format()`` prints it).
    """
    from brainage.bidsapp import bids_group as _group

    summary: GroupSummary = _group(
        bids_dir, output_dir, participant_labels, correction=correction, method=method,
        fit_on=fit_on, per_site=per_site, n_boot=n_boot, seed=seed, folds=folds,
        reference=reference, n_splits=n_splits)
    return summary


def check_cohort(source: PathLike, *, format: str | None = None,
                 participant_labels: Sequence[str] | None = None, sex_codes: str | None = None,
                 require_site: bool = False, check_images: bool = True, modality: str = "vbm",
                 image_dir: PathLike | None = None, write: PathLike | None = None
                 ) -> CohortReport:
    """``brainage cohort check``: read and validate a cohort that must have scans, and
    return it with its notes and warnings (:func:`brainage.data.sources.read_cohort`).

    The options are those of :func:`load_cohort`; `write`: also write the validated cohort
    table there (TSV; nothing is written when there are problems).

    Raises:
        ValidationError: every problem found, each with file, row, value and fix.
    """
    from brainage.data.sources import read_cohort

    report = read_cohort(_fs(source), format=format, participant_labels=participant_labels,
                         sex_codes=sex_codes, require_site=require_site,
                         check_images=check_images, modality=modality,
                         image_dir=_fs_or_none(image_dir), require_scans=True)
    if write is not None:
        report.cohort.to_tsv(_fs(write))
    return report


def split(cohort: Cohort | PathLike, out: PathLike, method: str = "kfold", *, k: int = 5,
          seed: int = 0, val: float | None = None, test: float = 0.15,
          test_sites: Sequence[str] | None = None, n_test_sites: int = 1,
          stratify_site: bool = True, age_bins: int | None = None,
          split_map: str | Mapping[str, str | None] | None = None, force: bool = False
          ) -> Splits:
    """``brainage split``: subject-level train/val/test splits of a cohort, written once to
    `out` as JSON (an existing `out` that fits the cohort is kept and returned, unless
    `force`; :mod:`brainage.data.splits`).

    Args:
        cohort: A :class:`Cohort` or anything :func:`load_cohort` reads.
        out: The splits file.
        method: ``kfold``, ``holdout``, ``sites`` or ``openbhb``.
        k: Folds (kfold).
        seed: Random seed.
        val: Validation fraction: of each fold's training subjects (kfold, sites, openbhb;
            default 0) or of all subjects (holdout; default 0.15).
        test: Test fraction (holdout).
        test_sites: Sites held out as test (sites).
        n_test_sites: Sites drawn at random as test when `test_sites` is not given.
        stratify_site: Balance sites across roles.
        age_bins: Coarse age quantile bins (default: fine age-sorted dealing).
        split_map: openbhb: ``{value: role}`` for the ``split`` column (or the text
            ``"VALUE=ROLE,..."``; a role None or empty leaves those rows out).
        force: Remake the file if it exists.
    """
    from brainage.data.cohort import Cohort
    from brainage.data.splits import load_or_make_splits, make_splits, parse_mapping

    data = cohort if isinstance(cohort, Cohort) else load_cohort(
        cohort, require_site=method == "sites", check_images=False)
    mapping = parse_mapping(split_map) if isinstance(split_map, str) or split_map is None \
        else dict(split_map)
    per_method: dict[str, dict[str, Any]] = {
        "kfold": {"k": k, "val_fraction": val or 0.0},
        "holdout": {"val": 0.15 if val is None else val, "test": test},
        "sites": {"test_sites": list(test_sites) if test_sites else None,
                  "n_test_sites": n_test_sites, "val": val or 0.0},
        "openbhb": {"mapping": mapping or None, "val_fraction": val or 0.0},
    }
    params = {**per_method.get(method, {}), "stratify_site": stratify_site,
              "n_age_bins": age_bins, "seed": seed}
    if Path(out).exists() and not force:
        return load_or_make_splits(_fs(out), data, method, **params)
    splits = make_splits(data, method, **params)
    splits.to_json(_fs(out))
    return splits


@dataclass(frozen=True)
class ModelSummary:
    """One registered network (:func:`list_models`)."""

    name: str
    kind: str
    parameters: int
    description: str


def list_models(pattern: str | None = None, kind: str = "age") -> list[ModelSummary]:
    """``brainage models``: the registered networks whose name matches the shell wildcard
    `pattern`, with parameter counts at their default settings.

    Args:
        pattern: e.g. ``"*3d"``; None: every one.
        kind: ``age`` (the networks :func:`train` accepts), ``generator``, ``critic``
            (TGB-GAN) or ``all``.

    Raises:
        InputError: an unknown kind.
    """
    import torch

    from brainage.errors import InputError
    from brainage.models import count_parameters, create_model, model_info
    from brainage.models import list_models as names
    from brainage.models.registry import KINDS

    if kind != "all" and kind not in KINDS:
        raise InputError(f"--kind {kind!r} is not a model kind. Fix: use one of "
                         f"{', '.join((*KINDS, 'all'))}.")
    out = []
    for name in names(pattern, kind=None if kind == "all" else kind):
        info = model_info(name)
        with torch.device("meta"):  # count without allocating the weights
            n_params = int(count_parameters(create_model(name)))
        out.append(ModelSummary(name, str(info.kind), n_params, str(info.description)))
    return out


def presets(kind: Literal["train", "gan"] = "train") -> dict[str, str]:
    """``brainage config list``: the shipped presets of `kind` (``train`` or ``gan``), name
    to description."""
    from brainage.training.presets import describe, list_presets

    return {name: describe(name, kind) for name in list_presets(kind)}


def show_config(name: PathLike, overrides: Sequence[str] = (), *, gan: bool = False
                ) -> TrainConfig | GanConfig:
    """``brainage config show``: a preset or YAML file fully resolved (defaults, inherited
    files, the file, then ``key=value`` `overrides`); `gan`: read a file as a GAN config
    (a GAN preset is recognised by its name)."""
    from brainage.training.config import load_train_config
    from brainage.training.gan_config import load_gan_config
    from brainage.training.presets import kind_of

    text = _fs(name)
    if gan or kind_of(text) == "gan":
        return load_gan_config(text, list(overrides))
    return load_train_config(text, list(overrides))


def selftest(model: PathLike | None = None) -> SelftestResult:
    """``brainage selftest``: predict generated scans with the bundled model (or `model`, a
    run folder with a ``golden.json``) and compare with the ages recorded when it was
    built (:func:`brainage.inference.selftest.run_selftest`; ``.passed``, ``.format()``)."""
    from brainage.inference.selftest import run_selftest

    return run_selftest(None if model is None else Path(model))
