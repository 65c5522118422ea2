"""``brainage prepare SOURCE OUT``: raw T1w scans -> model-ready MNI volumes, QC, cache, BIDS derivatives."""

from __future__ import annotations

from pathlib import Path

import typer

from brainage.cli.labels import label_option, participant_labels
from brainage.cli.scan_options import (
    array_parallelism_option,
    cluster_option,
    executor_option,
    jobs_option,
    partition_option,
    progress_arg,
    progress_option,
    scale_out,
    shards_option,
)
from brainage.errors import BrainAgeError, InputError


def prepare(
    source: Path = typer.Argument(
        ..., help="Cohort: BIDS folder, or CSV/TSV table with a path column to raw T1w NIfTI."
    ),
    out: Path = typer.Argument(
        ..., help="Output folder: cache, index.tsv, qc.tsv and BIDS derivatives (one spec)."
    ),
    grid: str = typer.Option(
        "tsan", "--grid", help="tsan (2 mm 91x109x91) | openbhb-vbm (1.5 mm) | "
        "openbhb-quasiraw (1 mm) | gan (96^3) | <s>mm[:XxYxZ], e.g. 1.75mm:104x124x104."
    ),
    n4: bool = typer.Option(
        True, "--n4/--no-n4", help="N4 bias-field correction first (about +3 s per scan)."
    ),
    skullstrip: str = typer.Option(
        "refined", "--skullstrip", help="refined (registered MNI mask grown into brain-bright "
        "voxels; fast, the default) | template (registered MNI mask as is) | deepbet (neural "
        "network; slower)."
    ),
    nonlinear: bool = typer.Option(
        False, "--nonlinear", help="Nonlinear (SyN) registration after the affine (with "
        "--tissues: also a log-Jacobian map)."
    ),
    tissues: bool = typer.Option(
        True, "--tissues/--no-tissues", help="Also write grey matter, white matter and CSF "
        "probability maps (cached, and as BIDS _label-GM_probseg etc.; about 0.3 s per scan). "
        "The default model (tissue_ridge) reads them."
    ),
    normalisation: str | None = typer.Option(
        None, "--normalisation", help="zscore | minmax | none (default: the grid's)."
    ),
    spec_file: Path | None = typer.Option(
        None, "--spec", help="Prepare exactly like this preprocessing_spec.json, or like "
        "a run folder's models (--spec RUN, e.g. before fine-tuning with --init-from RUN); "
        "overrides --grid, --n4, --skullstrip, --nonlinear, --normalisation, --tissues."
    ),
    jobs: int | None = jobs_option(),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="Torch threads per job, for deepbet (default: CPU "
        "cores / jobs). ITK runs single-threaded: see --itk-threads."
    ),
    itk_threads: int = typer.Option(
        1, "--itk-threads", min=1, help="ITK threads per job. 1 (default): outputs are "
        "bit-identical from run to run. More is about 25% faster per scan with 2, but the "
        "registration then varies slightly between runs. Use --jobs for speed."
    ),
    shard: str | None = typer.Option(
        None, "--shard", help="Process shard i of N (1-based), e.g. 3/8, for array jobs."
    ),
    participant_label: list[str] | None = label_option(),
    format: str | None = typer.Option(None, "--format", help="Cohort format (detected)."),
    progress: bool = progress_option(),
    executor: str | None = executor_option(),
    shards: int | None = shards_option(),
    partition: str | None = partition_option(),
    array_parallelism: int | None = array_parallelism_option(),
    cluster: Path | None = cluster_option(),
) -> None:
    """Preprocess every scan; reruns skip finished scans and retry failed ones.

    Exit status 0 when every selected scan is prepared (flagged scans included, and scans
    another prepare process is working on: they are named), 1 when some failed (each
    failure is recorded in index.tsv), 2 on a usage error, 130 when interrupted (Ctrl-C:
    finished scans are kept; rerun to resume).
    """
    import brainage
    from brainage.cluster import ShardsFailed
    from brainage.data.sources import read_cohort
    from brainage.preprocessing import parse_shard
    from brainage.preprocessing.runner import PrepareInterrupted

    options = {} if spec_file is not None else {
        "grid": grid, "n4": n4, "skullstrip": skullstrip, "nonlinear": nonlinear,
        "normalisation": normalisation, "tissues": tissues}
    try:
        labels = participant_labels(participant_label)
        # headers are checked per scan by the pipeline, so one bad image fails alone
        report = read_cohort(source, format=format, check_images=False)
        for note in report.notes:
            typer.echo(f"note: {note}")
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        scaled = scale_out(executor, shards, partition, array_parallelism, cluster, jobs)
        if scaled is not None and shard:
            raise InputError(f"--shard {shard} and --executor {executor} both given. Fix: "
                             "--executor splits into --shards itself; drop --shard.")
        if scaled is None:
            summary = brainage.prepare(
                report.cohort, out, spec_file, jobs=jobs,
                shard=parse_shard(shard) if shard else None, participant_labels=labels or None,
                threads=threads, itk_threads=itk_threads, progress=progress_arg(progress),
                **options)
        else:
            summary = _prepare_sharded(report.cohort, out, spec_file, options, scaled, labels,
                                       jobs, threads, itk_threads)
    except ShardsFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except BrainAgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PrepareInterrupted as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(130) from None
    typer.echo(summary.format())
    if summary.failed:
        raise typer.Exit(1)


def _prepare_sharded(cohort: object, out: Path, spec_file: Path | None, options: dict,
                     scaled: tuple, labels: list[str], jobs: int | None, threads: int | None,
                     itk_threads: int) -> object:
    """``prepare --executor``: the shards as a job array, then one index."""
    from brainage.preprocessing import PreprocessingSpec
    from brainage.preprocessing.sharded import prepare_sharded

    kind, profile, shards = scaled
    spec = (PreprocessingSpec.load(spec_file).with_current_libraries() if spec_file is not None
            else PreprocessingSpec.create(**options))
    typer.echo(f"submitting {shards} shard(s) to the {kind} executor", err=True)
    return prepare_sharded(cohort, out, spec, shards=shards, executor=kind, profile=profile,
                           participant_labels=labels or None,
                           jobs=jobs if jobs is not None else profile.cpus_per_task,
                           threads=threads, itk_threads=itk_threads)


def register(app: typer.Typer) -> None:
    """Add the ``prepare`` command to the main app."""
    app.command("prepare")(prepare)
