"""``brainage train``: train a model (or the TSAN cascade) on a prepared cohort."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``train`` command to `app`."""

    @app.command("train")
    def train(
        prepared: Path = typer.Argument(..., help="Prepared cohort (brainage prepare)."),
        run_dir: Path = typer.Argument(..., help="Run folder to create, or to resume."),
        config: Path | None = typer.Option(
            None, "--config", "-c",
            help="YAML config (configs/tsan.yaml, ...); default: the CPU preset."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a config field, e.g. --set epochs=5 (repeatable)."),
        folds: int | None = typer.Option(
            None, "--folds", min=2, help="K-fold cross-validation: one model per fold."),
        cascade: bool = typer.Option(
            False, "--cascade", help="TSAN two-stage cascade (stage 2 on out-of-fold ages)."),
        stage2_config: Path | None = typer.Option(
            None, "--stage2-config", help="Stage-2 YAML (default: TSAN's, from stage 1)."),
        splits: Path | None = typer.Option(
            None, "--splits", help="Splits file to use instead of making new splits."),
        cohort: Path | None = typer.Option(
            None, "--cohort",
            help="Cohort (table or BIDS) with ages, when PREPARED has no cohort.tsv."),
    ) -> None:
        """Train on PREPARED and write RUN_DIR: weights, config, splits, metrics, model card.

        Rerun the same command to resume an interrupted run from its last epoch. With
        --cascade, --set changes stage 1; stage 2 follows --stage2-config (or TSAN's
        stage-2 recipe derived from stage 1) and shares stage 1's splits and hardware.
        """
        from brainage.tasks.cascade import train_cascade
        from brainage.tasks.config import load_train_config
        from brainage.tasks.train import global_rank, train_cohort

        cfg = load_train_config(config, split_overrides(overrides, folds, cascade))
        if cascade:
            cfg2 = load_train_config(stage2_config) if stage2_config else None
            run = train_cascade(prepared, run_dir, cfg, cfg2, splits, cohort)
        else:
            if stage2_config is not None:
                typer.echo("--stage2-config is only used with --cascade.", err=True)
                raise typer.Exit(2)
            run = train_cohort(prepared, run_dir, cfg, splits, cohort=cohort)
        if global_rank() == 0:
            typer.echo(summary(run))


def split_overrides(overrides: list[str], folds: int | None, cascade: bool) -> list[str]:
    """``--set`` items plus the split implied by --folds (k-fold) or --cascade (k-fold)."""
    sets = list(overrides)
    if folds is not None:
        sets += ["split.method=kfold", f"split.folds={folds}"]
    elif cascade:
        sets += ["split.method=kfold"]
    return sets


def summary(run: Path) -> str:
    """A few lines on a finished run: members and held-out metrics."""
    import json

    from brainage.tasks import run_folder as rf

    info = rf.read_run_info(run)
    metrics = json.loads((run / rf.METRICS).read_text())
    final = metrics.get("final", metrics)
    lines = [f"Run {run} ({info.kind}); training ages {info.training_range[0]:.1f}-"
             f"{info.training_range[1]:.1f}"]
    for name, m in final.get("uncorrected", {}).items():
        r = f", r {m['pearson_r']:.3f}" if "pearson_r" in m else ""
        lines.append(f"  {name}: n {m['n']}, MAE {m['mae']:.2f} y{r}")
    for name, spread in metrics.get("bin_spread", {}).items():
        if spread.get("mean_sd") is not None:
            lines.append(f"  stage-2 {name}: mean SD within 5-year bins "
                         f"{spread['mean_sd']:.2f} y, distinct values per scan "
                         f"{spread['distinct_per_scan']:.2f}")
    return "\n".join(lines)
