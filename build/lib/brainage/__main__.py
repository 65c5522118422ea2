"""``python -m brainage``: the same as the ``brainage`` command."""

from brainage.cli.main import run

if __name__ == "__main__":
    run()
