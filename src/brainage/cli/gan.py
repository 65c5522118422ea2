"""``brainage gan``: TGB-GAN training, synthesis of age-labelled brains, age-change maps."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add ``gan train``, ``gan synthesize`` and ``gan change-map`` to `app`."""
    gan_app = typer.Typer(help="TGB-GAN (Li et al. 2021): train generators, synthesise "
                               "age-labelled brains, map age-related regions.",
                          no_args_is_help=True)

    @gan_app.command("train")
    def train(
        prepared: Path = typer.Argument(..., help="Prepared cohort (e.g. --grid gan)."),
        run_dir: Path = typer.Argument(..., help="GAN run folder to create, or to resume."),
        config: str | None = typer.Option(
            None, "--config", "-c", help="GAN preset (tgbgan, tgbgan_no_task, tgbgan_cpu, "
            "tgbgan_cpu_no_task; `brainage config list`) or a YAML file; default tgbgan."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a field, e.g. --set epochs=5 (repeatable)."),
        folds: int | None = typer.Option(
            None, "--folds", min=2, help="One GAN per fold, each on its training subjects."),
        splits: Path | None = typer.Option(
            None, "--splits", help="Splits file: one GAN per fold, on its train subjects."),
        cohort: Path | None = typer.Option(
            None, "--cohort", help="Cohort with ages, when PREPARED has no cohort.tsv."),
    ) -> None:
        """Train TGB-GAN on PREPARED and write RUN_DIR (generators, critics, task branches,
        per-epoch real-vs-reconstruction PNGs; best epoch by held-out reconstruction L1).

        Rerun the same command to resume. Use --folds or --splits when the synthetic brains
        will train a cross-validated regressor: a GAN trained on every subject has seen
        each fold's test subjects, and `brainage train --synthetic` refuses its children.
        """
        import brainage

        run = brainage.gan_train(prepared, run_dir, config, overrides=overrides, folds=folds,
                                 splits=splits, cohort=cohort)
        typer.echo(summary(run))

    @gan_app.command("synthesize")
    def synthesize(
        gan_run: Path = typer.Argument(..., help="GAN run folder (brainage gan train)."),
        out: Path = typer.Argument(..., help="Synthetic dataset folder to write."),
        cap: int = typer.Option(50, "--cap", min=1, help="Subjects per age bin, real + "
                                "synthetic (the paper's 50)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the pairs and weights."),
        bin_width: float = typer.Option(1.0, "--bin-width", help="Age-bin width (years)."),
        reuse_pairs: bool = typer.Option(
            False, "--reuse-pairs", help="Reuse a bin's pairs (new weights) once used up."),
        prepared: Path | None = typer.Option(
            None, "--prepared", help="The GAN's prepared cohort (default: the recorded one)."),
        change_map: bool = typer.Option(
            True, "--change-map/--no-change-map", help="Also write the age-change map."),
        device: str | None = typer.Option(None, "--device", help="cpu (default) or cuda."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT."),
    ) -> None:
        """Encode each GAN's training subjects, interpolate latents within age bins (convex
        age labels), decode, and write OUT: a prepared cohort for `brainage train
        --synthetic OUT` plus BIDS derivatives (NIfTI, participants.tsv with the parents).
        """
        import brainage

        path = brainage.gan_synthesize(gan_run, out, prepared=prepared, cap=cap, seed=seed,
                                       bin_width=bin_width, reuse_pairs=reuse_pairs,
                                       device=device, change_map=change_map,
                                       overwrite=overwrite)
        typer.echo(synthesis_summary(path))

    @gan_app.command("change-map")
    def change_map(
        gan_run: Path = typer.Argument(..., help="GAN run folder (brainage gan train)."),
        out: Path = typer.Argument(..., help="Folder to write the map into."),
        fraction: float = typer.Option(
            0.25, "--fraction", help="Youngest / oldest share of subjects forming the groups."),
        steps: int = typer.Option(5, "--steps", min=2, help="Points decoded along the path."),
        prepared: Path | None = typer.Option(
            None, "--prepared", help="The GAN's prepared cohort (default: the recorded one)."),
        device: str | None = typer.Option(None, "--device", help="cpu (default) or cuda."),
    ) -> None:
        """Decode the path from young to old mean latents and write the voxelwise change
        (NIfTI on the template grid, sidecar, figure)."""
        import brainage

        path = brainage.gan_change_map(gan_run, out, prepared=prepared, fraction=fraction,
                                       steps=steps, device=device)
        typer.echo(f"Wrote {path}")

    app.add_typer(gan_app, name="gan")


def summary(run: Path) -> str:
    """A few lines on a finished GAN run: members and their best epochs."""
    import json

    from brainage import runs as rf

    info = rf.read_run_info(run)
    members = json.loads((run / rf.METRICS).read_text())["members"]
    lines = [f"GAN run {run} ({info.extra.get('run_id')}); ages {info.training_range[0]:.1f}-"
             f"{info.training_range[1]:.1f}"]
    for name, m in members.items():
        l1 = "n/a" if m.get("val_l1") is None else f"{m['val_l1']:.4f}"
        lines.append(f"  {name}: best epoch {m['best_epoch']}, held-out L1 {l1}")
    return "\n".join(lines)


def synthesis_summary(path: Path) -> str:
    """One line per GAN member: children written."""
    from brainage.synthesis.dataset import read_manifest

    manifest = read_manifest(path)
    lines = [f"Wrote {path} ({manifest['gan_run']['id']})"]
    for m in manifest["members"]:
        lines.append(f"  {m['member']}: {m['children']} synthetic subjects from "
                     f"{len(m['seen'])} real ones")
    return "\n".join(lines)
