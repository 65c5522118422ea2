"""The ``brainage`` command.

Each command lives in its own small module of this package and imports the heavy
libraries (torch, nibabel, ...) inside its function body, so ``brainage --help`` and
``brainage --version`` stay instant.
"""

from __future__ import annotations

import sys

import typer

from brainage import __version__
from brainage.errors import BrainAgeError

app = typer.Typer(
    name="brainage",
    help="Brain age and brain-age gap from T1-weighted MRI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"brainage {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Brain age and brain-age gap from T1-weighted MRI."""


def _register() -> None:
    # One line per command module; each module exposes `register(app)`.
    from brainage.cli import (
        cohort,
        config,
        evaluate,
        explain,
        gan,
        models,
        predict,
        prepare,
        pretrain,
        probe,
        report,
        simulate,
        split,
        train,
    )

    for module in (simulate, cohort, split, prepare, models, config, train, pretrain, probe,
                   gan, predict, evaluate, explain, report):
        module.register(app)


_register()


def run() -> None:
    """Console-script entry point: user errors print a message (no traceback), exit 2."""
    try:
        app()
    except BrainAgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
