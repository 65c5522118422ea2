"""``brainage config``: the training presets shipped with the package."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``config list`` and ``config show`` to `app`."""
    config_app = typer.Typer(help="Training presets: list them, print one resolved.",
                             no_args_is_help=True)

    @config_app.command("list")
    def list_() -> None:
        """The presets, one per line with its description (use them as `-c NAME`)."""
        from brainage.training.presets import describe, list_presets

        names = list_presets()
        width = max(len(n) for n in names)
        for name in names:
            typer.echo(f"{name:<{width}}  {describe(name)}")

    @config_app.command("show")
    def show(
        name: str = typer.Argument(..., help="Preset name or YAML file."),
        overrides: list[str] = typer.Option(
            [], "--set", help="Override a field, e.g. --set epochs=5 (repeatable)."),
    ) -> None:
        """Print the fully resolved config (defaults, inherited files, the file, --set)."""
        import yaml

        from brainage.config import to_dict
        from brainage.training.config import load_train_config

        config = load_train_config(name, overrides)
        typer.echo(yaml.safe_dump(to_dict(config), sort_keys=False).rstrip())

    app.add_typer(config_app, name="config")
