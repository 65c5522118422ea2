"""``brainage cohort check``: read and validate a cohort, print a summary or every problem."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from brainage.cli.labels import label_option, participant_labels
from brainage.errors import BrainAgeError

if TYPE_CHECKING:
    from brainage.data.sources import CohortReport


def check(
    source: Path = typer.Argument(
        ..., help="BIDS folder, CSV/TSV table, OpenBHB folder or .npy, or TSAN table."
    ),
    format: str | None = typer.Option(
        None, "--format", help="bids | table | openbhb | tsan (detected when left out; "
        "tsan is never detected)."
    ),
    participant_label: list[str] | None = label_option(),
    sex_codes: str | None = typer.Option(
        None, "--sex-codes", help="Numeric sex convention: 0=female | 0=male | "
        "1=male,2=female | 1=female,2=male."
    ),
    require_site: bool = typer.Option(
        False, "--require-site", help="Every scan must have a site (for site-aware splits)."
    ),
    write: Path | None = typer.Option(
        None, "--write", help="Write the validated cohort table here (TSV); nothing is "
        "written when there are problems."
    ),
    modality: str = typer.Option("vbm", "--modality", help="OpenBHB arrays: vbm | quasiraw."),
    image_dir: Path | None = typer.Option(
        None, "--image-dir", help="TSAN: folder of images (default: the table's folder)."
    ),
    check_images: bool = typer.Option(
        True, "--check-images/--no-check-images", help="Check every image header."
    ),
) -> None:
    """Validate a cohort: every problem at once, or a summary (n, ages, sites)."""
    import brainage

    try:
        report = brainage.check_cohort(
            source, format=format, participant_labels=participant_labels(participant_label),
            sex_codes=sex_codes, require_site=require_site, check_images=check_images,
            modality=modality, image_dir=image_dir, write=write,
        )
    except BrainAgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    _print_report(report, write)


def _print_report(report: CohortReport, written: Path | None) -> None:
    typer.echo(report.cohort.format_summary())
    for note in report.notes:
        typer.echo(f"  note: {note}")
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo("problems: 0")
    if written is not None:
        typer.echo(f"wrote {written}")


def register(app: typer.Typer) -> None:
    """Add the ``cohort`` command group to the main app."""
    cohort_app = typer.Typer(
        name="cohort", help="Read and validate cohorts.", no_args_is_help=True
    )
    cohort_app.command("check")(check)
    app.add_typer(cohort_app, name="cohort")
