"""``brainage evaluate``: metrics, bias correction, group and longitudinal analyses."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``evaluate`` command to `app`."""

    @app.command("evaluate")
    def evaluate(
        predictions: Path = typer.Argument(..., help="Predictions TSV (brainage predict)."),
        output: Path = typer.Option(..., "-o", "--output", help="Output folder (created)."),
        correction: Path | None = typer.Option(
            None, "--correction",
            help="Run folder (bias_correction.json) or JSON file with a fitted correction."),
        method: str | None = typer.Option(
            None, "--method", help="beheshti | cole | smith, when fitting or cross-fitting here."),
        fit_on: str | None = typer.Option(
            None, "--fit-on", help="Fit the correction on matching rows, e.g. 'group==control'."),
        per_site: bool = typer.Option(False, "--per-site", help="One correction per site."),
        n_boot: int = typer.Option(1000, "--n-boot", min=0, help="Bootstrap resamples."),
        seed: int = typer.Option(0, "--seed", help="Seed of bootstrap, folds and splits."),
        folds: int = typer.Option(5, "--folds", min=2, help="Folds when cross-fitting."),
        reference: str = typer.Option("control", "--reference", help="Reference group."),
    ) -> None:
        """Evaluate predictions: MAE, r, R², gap bias, per set/site/age bin, with bootstrap CIs.

        Without --correction or --fit-on, the table's corrected_age is used when present;
        otherwise a correction is cross-fitted within the table (k-fold), and the output
        says so.
        """
        import brainage
        from brainage.evaluation.pipeline import format_summary

        result = brainage.evaluate(
            predictions, output, correction=correction, method=method, fit_on=fit_on,
            per_site=per_site, n_boot=n_boot, seed=seed, folds=folds, reference=reference,
        )
        typer.echo(format_summary(result))
