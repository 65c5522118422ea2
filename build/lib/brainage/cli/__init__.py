"""Command line: a thin Typer shell over the Python API (heavy imports live inside commands)."""
