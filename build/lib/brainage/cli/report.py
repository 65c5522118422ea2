"""``brainage report``: a self-contained HTML page from a run or an evaluation folder."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to `app`."""

    @app.command("report")
    def report(
        source_dir: Path = typer.Argument(
            ..., help="Run folder (brainage train) or evaluation folder (brainage evaluate)."),
        output: Path = typer.Option(Path("report.html"), "-o", "--output",
                                    help="HTML file to write (replaced if it exists)."),
        qc: Path | None = typer.Option(
            None, "--qc", help="QC table (TSV: participant_id, session, flags) to summarise."),
        title: str | None = typer.Option(None, "--title", help="Page title."),
        n_boot: int = typer.Option(
            1000, "--n-boot", min=0,
            help="Bootstrap resamples when metrics are computed here (run folder without "
                 "an evaluation)."),
        seed: int = typer.Option(0, "--seed", help="Seed of that bootstrap."),
    ) -> None:
        """Write one HTML page: data summary, figures, metrics with intervals, group and
        longitudinal results, QC flags, model card and preprocessing specification.

        Figures are embedded; the page needs no network and no JavaScript. Sections
        without data say "not available".
        """
        import brainage

        path = brainage.report(source_dir, output, qc=qc, title=title, n_boot=n_boot, seed=seed)
        typer.echo(f"Wrote {path}")
