"""``brainage selftest``: validate this installation against the bundled model's outputs."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``selftest`` command to `app`."""

    @app.command("selftest")
    def selftest(
        model: Path | None = typer.Option(
            None, "--model", help="A run folder with a golden.json (default: the bundled "
            "model)."),
    ) -> None:
        """Predict generated scans with the bundled model and compare with the ages recorded
        when it was built (exit 1 on a mismatch). Takes under a minute."""
        import brainage

        result = brainage.selftest(model)
        typer.echo(result.format())
        if not result.passed:
            raise typer.Exit(1)
