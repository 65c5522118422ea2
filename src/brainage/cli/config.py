"""``brainage config``: the training and GAN presets shipped with the package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``config list`` and ``config show`` to `app`."""
    config_app = typer.Typer(help="Presets: list them, print one resolved.",
                             no_args_is_help=True)

    @config_app.command("list")
    def list_() -> None:
        """The presets, one per line with its description: training presets (use them as
        `brainage train -c NAME`), then GAN presets (`brainage gan train -c NAME`)."""
        import brainage

        train, gan = brainage.presets("train"), brainage.presets("gan")
        width = max(len(n) for n in (*train, *gan))
        for name, text in train.items():
            typer.echo(f"{name:<{width}}  {text}")
        typer.echo("\nGAN presets (brainage gan train -c NAME):")
        for name, text in gan.items():
            typer.echo(f"{name:<{width}}  {text}")

    @config_app.command("show")
    def show(
        name: str = typer.Argument(..., help="Preset name or YAML file."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a field, e.g. --set epochs=5 (repeatable)."),
        gan: bool = typer.Option(False, "--gan", help="Read a YAML file as a GAN config."),
    ) -> None:
        """Print the fully resolved config (defaults, inherited files, the file, --set)."""
        import yaml

        import brainage
        from brainage.config import to_dict

        config = brainage.show_config(name, overrides, gan=gan)
        typer.echo(yaml.safe_dump(to_dict(config), sort_keys=False).rstrip())

    app.add_typer(config_app, name="config")
