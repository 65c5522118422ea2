"""The ``brainage`` command.

Each command lives in its own small module of this package and imports the heavy
libraries (torch, nibabel, ...) inside its function body, so ``brainage --help`` and
``brainage --version`` stay instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from typer.core import TyperGroup

from brainage import __version__
from brainage.cli.labels import LEVELS, expand_label_args
from brainage.errors import BrainAgeError

#: The subcommand the BIDS-App form ``brainage BIDS_DIR OUTPUT_DIR LEVEL`` routes to.
BIDS_APP = "bids-app"


def route_args(args: list[str], commands: set[str]) -> list[str]:
    """The command line as the subcommands read it.

    ``brainage BIDS_DIR OUTPUT_DIR participant|group ...`` (a first argument that is an
    existing folder, not a command, followed by a level) becomes ``brainage bids-app ...``;
    space-separated participant labels become one flag each (:mod:`brainage.cli.labels`).
    """
    args = expand_label_args(args)
    first = args[0] if args else ""
    if (len(args) >= 3 and first not in commands and not first.startswith("-")
            and args[2] in LEVELS and Path(first).is_dir()):
        args = [BIDS_APP, *args]
    return args


class BrainageGroup(TyperGroup):
    """The top-level command group: rewrites the command line before dispatch."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]  # click's signature
        """Route the BIDS-App form and expand labels, then parse as usual."""
        return super().parse_args(ctx, route_args(list(args), set(self.commands)))


app = typer.Typer(
    cls=BrainageGroup,
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
    """Brain age and brain-age gap from T1-weighted MRI.

    BIDS App form: brainage BIDS_DIR OUTPUT_DIR participant|group [options] (see
    brainage bids-app --help).
    """


def _register() -> None:
    # One line per command module; each module exposes `register(app)`.
    from brainage.cli import (
        bids_app,
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
        selftest,
        simulate,
        split,
        train,
    )

    for module in (simulate, cohort, split, prepare, models, config, train, pretrain, probe,
                   gan, predict, evaluate, explain, report, bids_app, selftest):
        module.register(app)


_register()


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    """Warnings on the command line: ``warning: <message>``, without a source line."""
    return f"warning: {message}\n"


def run() -> None:
    """Console-script entry point: user errors print a message (no traceback), exit 2;
    warnings print as one line each."""
    import warnings

    warnings.formatwarning = _one_line_warning  # type: ignore[assignment]
    try:
        app()
    except BrainAgeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    run()
