"""``brainage pretrain``: contrastive pretraining of an encoder (Barbano et al., ISBI 2023)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``pretrain`` command to `app`."""

    @app.command("pretrain")
    def pretrain(
        data: Path = typer.Argument(
            ..., help="Prepared cohort (brainage prepare) or OpenBHB data (per-subject "
                      "arrays, or train.npy/test.npy + .tsv)."),
        run_dir: Path = typer.Argument(..., help="Run folder to create, or to resume."),
        config: str | None = typer.Option(
            None, "--config", "-c",
            help="Preset (contrastive: CPU, the default; contrastive_paper) or a YAML file."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a config field, e.g. --set loss.kwargs.method=yaware "
                              "(repeatable)."),
        folds: int | None = typer.Option(
            None, "--folds", min=2, help="K-fold splits: one encoder per fold."),
        splits: Path | None = typer.Option(
            None, "--splits", help="Splits file to use instead of making new splits."),
        cohort: Path | None = typer.Option(
            None, "--cohort", help="Cohort (table or BIDS) with ages, when DATA has no "
                                   "cohort.tsv."),
        modality: str = typer.Option("vbm", "--modality", help="OpenBHB: vbm | quasiraw."),
        mask: Path | None = typer.Option(
            None, "--mask", help="OpenBHB: the modality's mask (default: the challenge's "
                                 "file next to the data; flat rows need it)."),
    ) -> None:
        """Contrastive pretraining of an encoder on DATA; writes RUN_DIR (kind encoder).

        An encoder + projection head trained with a contrastive loss on age: RUN_DIR holds
        the weights, projection head, config, splits and model card. Only the training
        subjects of the splits are used. Rerun the same command to resume. Then
        `brainage probe RUN_DIR DATA` scores it and fits its age read-out.
        """
        import brainage
        from brainage.training.trainer import global_rank

        run = brainage.pretrain(data, run_dir, config, overrides=overrides, folds=folds,
                                splits=splits, cohort=cohort, modality=modality, mask=mask)
        if global_rank() == 0:
            typer.echo(summary(run))


def summary(run: Path) -> str:
    """One line on a finished encoder run."""
    from brainage import runs as rf

    info = rf.read_run_info(run)
    return (f"Run {run} ({info.kind}: {len(info.members)} encoder(s), representation "
            f"{info.extra.get('representation')} of {info.extra.get('representation_dim')} "
            f"dims); training ages {info.training_range[0]:.1f}-{info.training_range[1]:.1f}."
            f"\n  Next: brainage probe {run} DATA")
