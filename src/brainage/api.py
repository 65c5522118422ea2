"""The public Python API: one function per step of the pipeline, as the CLI runs them.

Each ``brainage`` command is a thin shell over one of these (it parses options, calls the
function, prints the result), and ``import brainage`` exposes them lazily::

    brainage.simulate -> brainage.load_cohort -> brainage.prepare -> brainage.train
    -> brainage.Predictor.from_run(run).predict(...) -> brainage.evaluate
    -> brainage.explain / brainage.report

Contrastive regression: brainage.pretrain -> brainage.probe -> brainage.Predictor (a probed
encoder run predicts like any run). TGB-GAN augmentation: brainage.gan_train ->
brainage.gan_synthesize (and brainage.gan_change_map) -> brainage.train(..., synthetic=...).

Heavy libraries (torch, ANTsPy, Lightning) load inside the functions, on first use.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainage.evaluation.pipeline import EvaluationResult
    from brainage.inference.explain import Explanation, FailedScan
    from brainage.preprocessing.runner import RunSummary
    from brainage.preprocessing.spec import PreprocessingSpec
    from brainage.training.config import TrainConfig
    from brainage.training.gan_config import GanConfig

PathLike = str | os.PathLike[str]


def simulate(out: PathLike, n: int = 200, sites: int = 4, seed: int = 0, *, jobs: int = 1,
             overwrite: bool = False, masks: bool = False,
             progress: Callable[[int, int], None] | None = None, **options: Any) -> Path:
    """Simulate a synthetic aging cohort (MNI152-based T1w heads) as a BIDS dataset.

    Args:
        out: The BIDS folder to write (built under a temporary name, then renamed).
        n: Subjects.
        sites: Scanner sites.
        seed: Seed; the same seed gives identical files whatever `jobs`.
        jobs: Worker processes.
        overwrite: Replace an existing `out`.
        masks: Also write the true brain masks to ``derivatives/simulation``.
        progress: Called as ``progress(done, total)`` after each subject.
        **options: Other fields of :class:`brainage.data.simulate.SimulationConfig`
            (``sessions``, ``voxel_size``, ``age_min``, ``site_effects``, ...).

    Returns:
        The dataset folder (ground truth in ``derivatives/simulation``).
    """
    from brainage.data.simulate import make_config, write_cohort

    config = make_config(n=n, sites=sites, seed=seed, **options)
    return write_cohort(out, config, jobs=jobs, overwrite=overwrite, masks=masks,
                        progress=progress)


def load_cohort(source: PathLike, **options: Any) -> Any:
    """Read and validate a cohort (BIDS folder, table, OpenBHB folder) into a :class:`Cohort`.

    Options are those of :func:`brainage.data.sources.load_cohort` (``format``,
    ``participant_labels``, ``check_images``, ...). Every bad row is reported at once.
    """
    from brainage.data.sources import load_cohort as _load

    return _load(Path(source), **options)


def prepare(source: Any, out: PathLike, spec: PreprocessingSpec | PathLike | None = None, *,
            jobs: int | None = 1, shard: tuple[int, int] | None = None,
            participant_labels: Sequence[str] | None = None, threads: int | None = None,
            itk_threads: int = 1, progress: Any = False, format: str | None = None,
            **spec_options: Any) -> RunSummary:
    """Preprocess every scan of a cohort into `out`: MNI152 grid, brain mask, QC, cache,
    BIDS derivatives. Reruns skip finished scans; a failed scan fails alone.

    Args:
        source: A :class:`Cohort` or anything :func:`load_cohort` reads.
        out: The prepared folder.
        spec: A :class:`PreprocessingSpec`, the path of a saved one (e.g. a run folder's
            ``preprocessing_spec.json``), or None for a new spec from `spec_options`
            (``grid``, ``n4``, ``skullstrip``, ``nonlinear``, ``normalisation``,
            ``tissues``).
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

    Returns:
        The run summary (counts, failures, flags; ``.format()`` prints it).
    """
    from brainage.data.cohort import Cohort
    from brainage.preprocessing import PreprocessingSpec, run_cohort

    if spec is None:
        spec = PreprocessingSpec.create(**spec_options)
    elif not isinstance(spec, PreprocessingSpec):
        spec = PreprocessingSpec.load(spec).with_current_libraries()
    # headers are checked per scan by the pipeline, so one bad image fails alone
    cohort = source if isinstance(source, Cohort) else load_cohort(
        source, format=format, check_images=False)
    return run_cohort(cohort, out, spec, jobs=jobs, shard=shard,
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
        else load_train_config(config, sets)
    cfg = _with_synthetic(cfg, synthetic, synthetic_ratio)
    cfg = _with_init(cfg, init_from, init_member)
    if cascade:
        cfg2 = stage2_config if isinstance(stage2_config, TrainConfig) or stage2_config is None \
            else load_train_config(stage2_config)
        return train_cascade(_open_data(prepared, cohort), run, cfg, cfg2, splits, cohort)
    if stage2_config is not None:
        raise InputError("stage2_config is only used with cascade=True (--cascade). "
                         "Fix: add --cascade, or drop --stage2-config.")
    if cfg.stack is not None:
        from brainage.training.stack import train_stack

        return train_stack(_open_data(prepared, cohort), run, cfg, splits, cohort)
    return train_cohort(_open_data(prepared, cohort), run, cfg, splits, cohort=cohort)


def _default_config(prepared: Any, cohort: Any, overrides: list[str],
                    network_only: bool) -> str:
    """The preset used without a config, said in a warning (see :func:`train`)."""
    import warnings

    from brainage.training.presets import DEFAULT_NETWORK, default_preset

    data = _open_data(prepared, cohort)
    tissues = bool(getattr(data, "spec", None) is not None and data.spec.tissues)
    name = default_preset(tissues, overrides, network_only)
    why = ("the default for scans prepared with tissue maps (the best measured configuration "
           "on real scans, docs/benchmarks.md); -c quickstart trains the CPU network") \
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
        else load_train_config(config or DEFAULT_PRESET, sets)
    return pretrain_cohort(_open_data(prepared, cohort, modality, mask), run, cfg, splits,
                           cohort)


def probe(run: PathLike, data: Any, output: PathLike | None = None, **options: Any
          ) -> dict[str, Any]:
    """Score a run's representation under the OpenBHB challenge protocol (linear probes
    fitted on training subjects only) and store its linear age read-out in the run.

    Options are those of :func:`brainage.evaluation.probe_run.probe_run` (``splits``,
    ``split_method``, ``cohort``, ``representation``, ``batch_size``, ``device``, ``cv``,
    ``mask``). Writes the metrics JSON (default ``RUN/probe_metrics.json``) and returns it:
    MAE internal and external, site balanced accuracy, ``score`` (MAE_ext x BAcc^0.3) and
    the two other scores of the challenge, per member and their mean.
    """
    from brainage.evaluation.probe_run import probe_run

    return probe_run(run, data, output, **options)


def _open_data(data: Any, cohort: Any = None, modality: str = "vbm",
               mask: PathLike | bool | None = None) -> Any:
    """A prepared cohort from a prepared folder, OpenBHB data or an opened cohort."""
    from brainage.preprocessing.openbhb_arrays import open_inputs

    return open_inputs(data, cohort, modality=modality, mask=mask)


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
        else load_gan_config(config, sets)
    return train_gan(prepared, run, cfg, splits, cohort=cohort)


def gan_synthesize(gan_run: PathLike, out: PathLike, **options: Any) -> Path:
    """Synthetic, age-labelled brains from a GAN run: within-bin latent interpolation.

    Options are those of :func:`brainage.synthesis.synthesize.synthesize` (``prepared``,
    ``cap``, ``seed``, ``bin_width``, ``reuse_pairs``, ``batch_size``, ``device``,
    ``change_map``, ``overwrite``). The dataset is a prepared cohort plus BIDS derivatives;
    add it to training with ``train(..., synthetic=out)``.
    """
    from brainage.synthesis.synthesize import synthesize

    return synthesize(gan_run, out, **options)


def gan_change_map(gan_run: PathLike, out: PathLike, **options: Any) -> Path:
    """The voxelwise change of decoded brains from young to old latents, as NIfTI + figure.

    Options are those of :func:`brainage.synthesis.change_map_io.change_map` (``prepared``,
    ``fraction``, ``steps``, ``device``).
    """
    from brainage.synthesis.change_map_io import change_map

    return change_map(gan_run, out, **options)


def evaluate(predictions: PathLike, output: PathLike, **options: Any) -> EvaluationResult:
    """Metrics with bootstrap confidence intervals, bias correction, per set/site/age bin.

    Options are those of :func:`brainage.evaluation.pipeline.run_evaluation`
    (``correction``, ``method``, ``fit_on``, ``per_site``, ``n_boot``, ``seed``, ...).
    Writes the evaluation folder and returns its result (``format_summary`` prints it).
    """
    from brainage.evaluation.pipeline import run_evaluation

    return run_evaluation(predictions, output, **options)


def explain(run: PathLike, scans: Sequence[PathLike], output: PathLike, method: str = "auto",
            **options: Any) -> list[Explanation | FailedScan]:
    """Explanation maps (template and native space) and region tables for raw scans.

    ``auto``: integrated gradients for networks, exact linear contributions for linear
    classical models (ridge, gpr); a stack sums its members' maps with its weights.

    Options are those of :func:`brainage.inference.explain.explain_scan` (``steps``,
    ``batch``, ``patch``, ``sex``, ``device``) and ``jobs`` (worker processes, default 1;
    None: every core), ``progress`` (False: quiet; True: a bar or log lines; a callable
    ``fn(done, total)``) and ``threads``. One entry per scan, in order: an
    :class:`Explanation`, or a ``FailedScan`` with the reason (the others go on).
    """
    from brainage.errors import InputError
    from brainage.inference.explain import METHODS, explain_scans

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}. "
                         "Fix: e.g. --method auto.")
    if options.get("sex") not in (None, "F", "M"):
        raise InputError(f"sex must be F or M, got {options['sex']!r}. Fix: --sex F or M.")
    return explain_scans(run, [Path(s) for s in scans], output, method=method, **options)


def report(source: PathLike, output: PathLike, **options: Any) -> Path:
    """One self-contained HTML page for a run or evaluation folder (figures embedded).

    Options are those of :func:`brainage.reporting.report.write_report` (``qc``,
    ``title``, ``n_boot``, ``seed``).
    """
    from brainage.reporting.report import write_report

    return write_report(source, output, **options)



def bids_participant(bids_dir: PathLike, output_dir: PathLike, model: PathLike | None = None,
                     participant_labels: Sequence[str] | None = None, **options: Any) -> Any:
    """BIDS-App participant level (:func:`brainage.bidsapp.bids_participant`)."""
    from brainage.bidsapp import bids_participant as _participant

    return _participant(bids_dir, output_dir, model, participant_labels, **options)


def bids_group(bids_dir: PathLike, output_dir: PathLike,
               participant_labels: Sequence[str] | None = None, **evaluate: Any) -> Any:
    """BIDS-App group level (:func:`brainage.bidsapp.bids_group`)."""
    from brainage.bidsapp import bids_group as _group

    return _group(bids_dir, output_dir, participant_labels, **evaluate)
