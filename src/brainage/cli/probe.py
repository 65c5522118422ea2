"""``brainage probe``: the OpenBHB challenge's linear probes on any run's representation."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``probe`` command to `app`."""

    @app.command("probe")
    def probe(
        run_dir: Path = typer.Argument(..., help="Run folder (brainage pretrain or train)."),
        data: Path = typer.Argument(
            ..., help="Prepared cohort or OpenBHB data the run's preprocessing matches."),
        output: Path | None = typer.Option(
            None, "-o", "--output", help="Metrics JSON (default RUN_DIR/probe_metrics.json)."),
        splits: Path | None = typer.Option(
            None, "--splits", help="Splits file of the probe (default: the run's own)."),
        split_method: str | None = typer.Option(
            None, "--split-method", help="Or split the data: openbhb (its split column)."),
        cohort: Path | None = typer.Option(
            None, "--cohort", help="Ages/sex/site for a prepared input without cohort.tsv."),
        representation: str = typer.Option(
            "auto", "--representation",
            help="auto (a contrastive run's projection, else features) | projection | "
                 "features."),
        batch_size: int = typer.Option(8, "--batch-size", min=1, help="Scans per batch."),
        device: str | None = typer.Option(None, "--device", help="cpu or cuda (default: auto)."),
        mask: Path | None = typer.Option(None, "--mask", help="OpenBHB: the modality's mask."),
    ) -> None:
        """OpenBHB challenge probes of RUN_DIR's representation on DATA; fits its age read-out.

        The probes are fitted on the training subjects (ridge for age, logistic regression
        for site, each grid-searched with 5-fold CV) and score the test subjects: MAE
        internal, MAE external, site balanced accuracy, score = MAE_ext x BAcc^0.3.

        The fitted ridge is stored in the run, so an encoder run then predicts with
        `brainage predict`. Test subjects the run trained on are refused.
        """
        import brainage

        out = brainage.probe(run_dir, data, output, splits=splits, split_method=split_method,
                             cohort=cohort, representation=representation,
                             batch_size=batch_size, device=device, mask=mask)
        typer.echo(summary(out, output or run_dir / "probe_metrics.json"))


def summary(out: dict, path: Path) -> str:
    """The challenge metrics in a few lines."""
    def fmt(key: str, scale: float = 1.0, unit: str = "") -> str:
        value = out.get(key)
        return "n/a" if value is None else f"{value * scale:.2f}{unit}"

    chance = out.get("chance_site_bacc")
    lines = [f"Probed {out['run']} ({out['representation']}, {out['n_features']} dims, "
             f"{len(out['members'])} member(s)); metrics in {path}",
             f"  MAE internal {fmt('mae_internal', unit=' y')}, external "
             f"{fmt('mae_external', unit=' y')}",
             f"  site balanced accuracy {fmt('site_bacc', 100, ' %')}"
             + (f" (chance {chance * 100:.1f} %)" if chance else ""),
             f"  score {fmt('score')} (MAE_ext x BAcc^0.3; page text {fmt('score_page_text')}, "
             f"RAMP {fmt('score_ramp')})"]
    return "\n".join(lines)
