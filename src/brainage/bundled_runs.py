"""The run folder shipped with the installation: the default of ``brainage predict``.

``src/brainage/bundled/<name>/`` is an ordinary run folder (``make model`` writes it:
``benchmarks/make_bundled_model.py`` trains it on the real IXI scans of ``../shared/data``)
plus ``golden.json``, the expected predictions of ``brainage selftest``. Every place that
means "the model that comes with brainage" (``predict`` without a run, the BIDS App without
``--model``, ``--init-from bundled``) resolves it through :func:`default_model_dir`.
"""

from __future__ import annotations

from pathlib import Path

from brainage.errors import NotFoundError

#: The word that names the bundled model where a run folder is expected.
BUNDLED = "bundled"


#: Folder of the bundled run inside the package.
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_NAME = "ixi_tissue_ridge"
#: The bundled network (the CPU SFCN preset on the same scans): what ``--init-from bundled``
#: fine-tunes, since the default model is classical and has no network weights.
BUNDLED_NETWORK = "ixi_sfcn"
#: What the bundled model is valid for (printed whenever it is used).
VALIDITY = ("bundled model {name}: trained on 121 real IXI T1w scans (adults 20-82 years, one "
            "3 T Philips site, Hammersmith Hospital; IXI data CC BY-SA 3.0, "
            "brain-development.org/ixi-dataset). On new people of that site expect about "
            "6.5 years MAE (a locked test split; docs/benchmarks.md); expect larger errors on "
            "other scanners, sites and ages; refit the bias correction on your own controls (brainage "
            "evaluate --fit-on ...).")


def default_model_dir() -> Path | None:
    """The bundled run folder, or None when this installation ships none."""
    folder = BUNDLED_DIR / BUNDLED_NAME
    return folder if (folder / "run.json").is_file() else None


def default_network_dir() -> Path | None:
    """The bundled network run (for fine-tuning), or None when none is shipped."""
    folder = BUNDLED_DIR / BUNDLED_NETWORK
    return folder if (folder / "run.json").is_file() else None


def validity_note(run: Path) -> str | None:
    """The line users see when `run` is the bundled model, else None."""
    for found in (default_model_dir(), default_network_dir()):
        if found is not None and Path(run).resolve() == found.resolve():
            return VALIDITY.format(name=found.name)
    return None


def resolve_run(source: str | Path) -> Path:
    """A run folder to fine-tune from: a path, or ``bundled`` (the bundled network, else the
    bundled default model, which a fine-tuning run then refuses as classical).

    Raises:
        NotFoundError: ``bundled`` was asked for but this installation has no bundled model.
    """
    if str(source) != BUNDLED:
        return Path(source)
    found = default_network_dir() or default_model_dir()
    if found is None:
        raise NotFoundError("no bundled model in this installation; pass a run folder "
                            "(e.g. --init-from runs/source, a folder written by "
                            "`brainage train`).")
    return found
