"""``brainage models`` (list the registry) and ``brainage import-sfcn`` (safe weight import)."""

from __future__ import annotations

from pathlib import Path

import typer

#: ``--kind`` of ``brainage models``: a kind of the model registry, or every kind.
ALL_KINDS = "all"


def models(
    pattern: str | None = typer.Argument(None, help="Shell wildcard on names, e.g. '*3d'."),
    kind: str = typer.Option(
        "age", "--kind",
        help="age (the networks `brainage train` accepts), generator, critic (TGB-GAN), or "
             "all (with a kind column)."),
) -> None:
    """List registered models with parameter counts at their default settings."""
    import brainage
    from brainage.models.registry import KINDS

    found = brainage.list_models(pattern, kind)
    if not found:
        typer.echo(f"no {'' if kind == ALL_KINDS else kind + ' '}model matches {pattern!r}")
        raise typer.Exit(1)
    width = max(len(m.name) for m in found)
    kind_width = max(len(k) for k in KINDS)
    for m in found:
        column = f"{m.kind:<{kind_width}}  " if kind == ALL_KINDS else ""
        typer.echo(f"{m.name:<{width}}  {column}{m.parameters / 1e6:8.2f} M  {m.description}")


def import_sfcn(
    state_dict: Path = typer.Argument(..., help="Published SFCN state dict (.p / .pt)."),
    out_dir: Path = typer.Argument(..., help="Folder for weights.safetensors + model.json."),
    age_range: tuple[float, float] = typer.Option(
        (42.0, 82.0), "--age-range", help="Bins the weights were trained with (start stop)."
    ),
    bin_width: float = typer.Option(1.0, "--bin-width", help="Bin width in years."),
) -> None:
    """Convert published SFCN weights (read with weights_only=True) into a brainage model."""
    from brainage.models.convert import import_sfcn as convert
    from brainage.models.io import count_parameters

    model = convert(state_dict, out_dir, age_range=age_range, bin_width=bin_width)
    typer.echo(
        f"wrote {out_dir}/weights.safetensors and model.json: sfcn, "
        f"{count_parameters(model):,} parameters, {model.age_bins.num_bins} bins "
        f"[{model.age_bins.start:g}, {model.age_bins.stop:g}) of {model.age_bins.width:g} y"
    )


def register(app: typer.Typer) -> None:
    """Add ``models`` and ``import-sfcn`` to the ``brainage`` app."""
    app.command("models")(models)
    app.command("import-sfcn")(import_sfcn)
