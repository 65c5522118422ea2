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
        from brainage.training.presets import describe, list_presets

        names = {kind: list_presets(kind) for kind in ("train", "gan")}
        width = max(len(n) for kind in names.values() for n in kind)
        for name in names["train"]:
            typer.echo(f"{name:<{width}}  {describe(name)}")
        typer.echo("\nGAN presets (brainage gan train -c NAME):")
        for name in names["gan"]:
            typer.echo(f"{name:<{width}}  {describe(name, 'gan')}")

    @config_app.command("show")
    def show(
        name: str = typer.Argument(..., help="Preset name or YAML file."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a field, e.g. --set epochs=5 (repeatable)."),
        gan: bool = typer.Option(False, "--gan", help="Read a YAML file as a GAN config."),
    ) -> None:
        """Print the fully resolved config (defaults, inherited files, the file, --set)."""
        import yaml

        from brainage.config import to_dict
        from brainage.training.config import load_train_config
        from brainage.training.gan_config import load_gan_config
        from brainage.training.presets import kind_of

        is_gan = gan or kind_of(name) == "gan"
        config = load_gan_config(name, overrides) if is_gan else load_train_config(name,
                                                                                   overrides)
        typer.echo(yaml.safe_dump(to_dict(config), sort_keys=False).rstrip())

    app.add_typer(config_app, name="config")
