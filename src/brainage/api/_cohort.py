"""The public API's data steps: simulate a cohort, read and check one, split it, prepare
its scans (:mod:`brainage.api`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from brainage.api._common import PathLike, _fs, _fs_or_none

if TYPE_CHECKING:
    from brainage.data.cohort import Cohort
    from brainage.data.sources import CohortReport
    from brainage.data.splits_file import Splits
    from brainage.preprocessing.grids import Grid
    from brainage.preprocessing.runner import RunSummary
    from brainage.preprocessing.spec import PreprocessingSpec
    from brainage.progress import ProgressArg


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
        sex_codes: Convention for numeric sex codes, e.g. ``"0=female"`` (see
            :data:`brainage.data.sex.NUMERIC_CONVENTIONS`). TSAN defaults to ``0=female``.
        require_site: Every scan must have a site (for site-aware splits).
        check_images: Check every image's header (never its voxels). When False, paths
            are not even checked for existence.
        modality: OpenBHB per-subject arrays: ``vbm`` (grey matter) or ``quasiraw``.
        image_dir: TSAN: folder searched for the images (default: the table's folder).

    Returns:
        The validated cohort, one row per scan. Notes are logged at INFO level and
        warnings (participants without an image, images without a participants.tsv row)
        are issued as ``CohortWarning``; :func:`check_cohort` returns both.

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
        params: Overrides of :data:`brainage.preprocessing.spec_params.DEFAULT_PARAMS` entries.

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
    from brainage.data.splits import load_or_make_splits, make_splits
    from brainage.data.splits_openbhb import parse_mapping

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
