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
        config: str | None = typer.Option(
            None, "--config", "-c",
            help="Preset name (quickstart, tsan, tsan_cpu, sfcn; `brainage config list`) or "
                 "a YAML file; default: the CPU preset."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a config field, e.g. --set epochs=5 (repeatable)."),
        folds: int | None = typer.Option(
            None, "--folds", min=2, help="K-fold cross-validation: one model per fold."),
        cascade: bool = typer.Option(
            False, "--cascade", help="TSAN two-stage cascade (stage 2 on out-of-fold ages)."),
        stage2_config: str | None = typer.Option(
            None, "--stage2-config",
            help="Stage-2 preset or YAML (default: TSAN's, from stage 1)."),
        splits: Path | None = typer.Option(
            None, "--splits", help="Splits file to use instead of making new splits."),
        cohort: Path | None = typer.Option(
            None, "--cohort",
            help="Cohort (table or BIDS) with ages, when PREPARED has no cohort.tsv."),
        synthetic: Path | None = typer.Option(
            None, "--synthetic",
            help="Synthetic dataset (brainage gan synthesize) added to every fold's "
                 "training set; its GAN's splits are used unless --splits is given."),
        synthetic_ratio: float | None = typer.Option(
            None, "--synthetic-ratio", min=0.0,
            help="Synthetic per real training subject (default 1), age-balanced, seeded."),
        init_from: str | None = typer.Option(
            None, "--init-from",
            help="Fine-tune: start every model from this finished run folder's weights (or "
                 "'bundled'). Its model is used; PREPARED must have its preprocessing spec."),
        init_member: str | None = typer.Option(
            None, "--init-member",
            help="Source member that initialises every model (default its first, e.g. "
                 "fold-0)."),
    ) -> None:
        """Train on PREPARED and write RUN_DIR: weights, config, splits, metrics, model card.

        Rerun the same command to resume an interrupted run from its last epoch. With
        --cascade, --set changes stage 1; stage 2 follows --stage2-config (or TSAN's
        stage-2 recipe derived from stage 1) and shares stage 1's splits and hardware.
        With --synthetic, only children of a GAN that saw none of a fold's validation or
        test subjects (and whose parents both train in the fold) join its training set.
        With --init-from, every model starts from one member of a finished run (its model
        and kwargs; soft-label age bins are extended to PREPARED's ages); not with --cascade.
        """
        import brainage
        from brainage.training.trainer import global_rank

        try:
            run = brainage.train(prepared, run_dir, config, overrides=overrides, folds=folds,
                                 cascade=cascade, stage2_config=stage2_config, splits=splits,
                                 cohort=cohort, synthetic=synthetic,
                                 synthetic_ratio=synthetic_ratio, init_from=init_from,
                                 init_member=init_member)
        except KeyboardInterrupt:
            if global_rank() == 0:
                typer.echo(interrupted(run_dir), err=True)
            raise typer.Exit(130) from None
        if global_rank() == 0:
            typer.echo(summary(run))


def interrupted(run: Path) -> str:
    """One line on what an interrupted run kept and how to resume it."""
    done = sorted(str(p.parent.relative_to(run)) for p in run.rglob("weights.safetensors"))
    resumable = sorted(str(p.parent.parent.relative_to(run))
                       for p in run.rglob("checkpoints/last.ckpt")
                       if not (p.parent.parent / "weights.safetensors").exists())
    return (f"interrupted: kept {len(done)} finished model(s) and the last epoch of "
            f"{len(resumable)} model(s) in progress ({', '.join(resumable) or 'none'}) in {run}. "
            "Resume by running the same command again.")


def summary(run: Path) -> str:
    """A few lines on a finished run: members and held-out metrics."""
    import json

    from brainage import runs as rf

    info = rf.read_run_info(run)
    metrics = json.loads((run / rf.METRICS).read_text())
    final = metrics.get("final", metrics)
    lines = [f"Run {run} ({info.kind}); training ages {info.training_range[0]:.1f}-"
             f"{info.training_range[1]:.1f}"]
    init = info.extra.get("init_from")
    if isinstance(init, dict):
        lines.append(f"  initialised from {init.get('run')} (member {init.get('member')})")
    for name, m in final.get("uncorrected", {}).items():
        r = f", r {m['pearson_r']:.3f}" if "pearson_r" in m else ""
        lines.append(f"  {name}: n {m['n']}, MAE {m['mae']:.2f} y{r}")
    for name, spread in metrics.get("bin_spread", {}).items():
        if spread.get("mean_sd") is not None:
            lines.append(f"  stage-2 {name}: mean SD within 5-year bins "
                         f"{spread['mean_sd']:.2f} y, distinct values per scan "
                         f"{spread['distinct_per_scan']:.2f}")
    return "\n".join(lines)
