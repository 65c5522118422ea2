"""``brainage predict``: brain age of new scans with a trained run folder."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to `app`."""

    @app.command("predict")
    def predict(
        run_dir: Path = typer.Argument(..., help="Run folder written by brainage train."),
        inputs: list[Path] = typer.Argument(
            ..., help="A prepared cohort, a cohort source (BIDS, table) or NIfTI files."),
        output: Path = typer.Option(..., "-o", "--output", help="Predictions TSV to write."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Scans per batch."),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: auto)."),
        cohort: Path | None = typer.Option(
            None, "--cohort", help="Ages/sex/site for a prepared input without cohort.tsv."),
        allow_library_drift: bool = typer.Option(
            False, "--allow-library-drift",
            help="Accept prepared inputs whose spec differs only in library versions."),
    ) -> None:
        """Predict age for INPUTS; writes participant_id, session, age, predicted_age, gap.

        Raw scans are preprocessed with the run's own preprocessing spec; a prepared cohort
        must have been prepared with that spec. Ages outside the training range are
        flagged in 'ood', QC problems in 'qc_flags'.
        """
        from brainage import Predictor
        from brainage.evaluation.predictions import write_predictions

        predictor = Predictor.from_run(run_dir, device=device, batch_size=batch_size,
                                       allow_library_drift=allow_library_drift)
        table = predictor.predict(inputs, cohort)
        write_predictions(output, table)
        typer.echo(summary(table, output))


def summary(table: object, output: Path) -> str:
    """Counts, flags and (when ages are known) the MAE of the written predictions."""
    import numpy as np

    t = table  # a pandas DataFrame
    lines = [f"Wrote {len(t)} prediction(s) to {output}"]  # type: ignore[arg-type]
    known = t["age"].notna()  # type: ignore[index]
    if known.any():
        mae = float(np.mean(np.abs(t.loc[known, "gap"])))
        lines.append(f"  with age: {int(known.sum())}, MAE {mae:.2f} y")
    for col, what in (("ood", "outside the training age range"), ("qc_flags", "with QC flags")):
        n = int(t[col].notna().sum()) if col in t else 0  # type: ignore[operator,index]
        if n:
            lines.append(f"  {n} {what} (column '{col}')")
    return "\n".join(lines)
