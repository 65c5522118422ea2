"""``brainage BIDS_DIR OUTPUT_DIR participant|group``: the BIDS App (alias ``brainage bids-app``)."""

from __future__ import annotations

from pathlib import Path

import typer

from brainage.cli.labels import LEVELS, label_option, participant_labels
from brainage.cli.scan_options import progress_arg, progress_option
from brainage.errors import BrainAgeError, InputError


def bids_app(
    bids_dir: Path = typer.Argument(..., help="The BIDS dataset (sub-*/[ses-*/]anat/*_T1w)."),
    output_dir: Path = typer.Argument(..., help="The derivatives folder to write into."),
    level: str = typer.Argument(..., help="participant (per subject; parallel-safe) or group."),
    participant_label: list[str] | None = label_option(),
    model: Path | None = typer.Option(
        None, "--model", help="Run folder of brainage train (default: the bundled model)."),
    explain: bool = typer.Option(True, "--explain/--no-explain",
                                 help="participant: saliency maps and region tables."),
    explain_method: str = typer.Option(
        "auto", "--explain-method", help="participant: auto (ig for networks, linear "
        "contributions for classical models), ig, occlusion, smoothgrad or linear."),
    explain_steps: int = typer.Option(32, "--explain-steps", min=1,
                                      help="participant: IG path points / SmoothGrad samples."),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: auto)."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="participant: torch threads per job (default: CPU "
        "cores / jobs)."),
    jobs: int | None = typer.Option(
        None, "--jobs", "-j", min=1, help="participant: subjects processed in parallel, in "
        "worker processes (default: every core). ITK runs single-threaded in each, so "
        "results are bit-identical to --jobs 1."),
    progress: bool = progress_option(),
    fit_on: str | None = typer.Option(
        None, "--fit-on", help="group: fit the bias correction on matching rows, e.g. "
        "'group==control' (as brainage evaluate)."),
    method: str | None = typer.Option(None, "--method", help="group: beheshti | cole | smith."),
    correction: Path | None = typer.Option(
        None, "--correction", help="group: a fitted correction (run folder or JSON) instead."),
    per_site: bool = typer.Option(False, "--per-site", help="group: one correction per site."),
    n_boot: int = typer.Option(1000, "--n-boot", min=0, help="group: bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="group: seed of bootstrap and folds."),
    reference: str = typer.Option("control", "--reference", help="group: reference group."),
) -> None:
    """BIDS App. participant: prepare, predict and explain each subject into
    OUTPUT_DIR/sub-<label>/ (many processes may share OUTPUT_DIR, e.g. array jobs);
    group: collate OUTPUT_DIR/group/predictions.tsv, evaluate and write report.html.

    Exit status 0 on success (subjects another process is working on are named), 1 when
    some subject failed (rerun to retry: finished subjects are skipped), 2 on a usage error.
    """
    import brainage

    try:
        labels = participant_labels(participant_label)
        if level == "participant":
            summary = brainage.bids_participant(
                bids_dir, output_dir, model, labels, explain=explain, method=explain_method,
                steps=explain_steps, device=device, threads=threads, jobs=jobs,
                progress=progress_arg(progress))
        elif level == "group":
            summary = brainage.bids_group(
                bids_dir, output_dir, labels, fit_on=fit_on, method=method,
                correction=correction, per_site=per_site, n_boot=n_boot, seed=seed,
                reference=reference)
        else:
            raise InputError(f"analysis level {level!r}: expected one of {', '.join(LEVELS)}. "
                             "Fix: brainage BIDS_DIR OUTPUT_DIR participant (then group).")
    except BrainAgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(summary.format())
    if getattr(summary, "failed", None):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``bids-app`` command (the positional form routes to it)."""
    app.command("bids-app")(bids_app)
