"""Presets shipped inside the package: training (``src/brainage/configs/*.yaml``) and GAN
training (``src/brainage/configs/gan/*.yaml``).

``brainage train -c tsan`` / ``brainage gan train -c tgbgan`` and ``inherits: tsan_cpu`` name a
preset; a path to a YAML file works wherever a name does. ``brainage config list`` shows
them, ``brainage config show NAME`` prints one fully resolved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from brainage.errors import NotFoundError, UnknownNameError

#: Folder of the shipped training presets.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"
#: Kinds of preset, each with its folder and the command that takes it.
Kind = Literal["train", "gan"]
FOLDERS: dict[str, Path] = {"train": PRESETS_DIR, "gan": PRESETS_DIR / "gan"}
COMMANDS = {"train": "brainage train", "gan": "brainage gan train"}


def list_presets(kind: Kind = "train") -> list[str]:
    """Names of the shipped presets of `kind` (``train`` or ``gan``), sorted."""
    return sorted(p.stem for p in FOLDERS[kind].glob("*.yaml"))


def describe(name: str, kind: Kind = "train") -> str:
    """The first comment line of a preset (its one-line description)."""
    for line in preset_path(name, kind).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def kind_of(name: str) -> Kind | None:
    """The kind of preset `name`, or None when it is no preset."""
    for kind in ("train", "gan"):
        if (FOLDERS[kind] / f"{name}.yaml").is_file():
            return kind  # type: ignore[return-value]
    return None


def preset_path(name: str, kind: Kind = "train") -> Path:
    """The file of preset `name` of `kind`.

    Raises:
        UnknownNameError: no such preset; the message lists them (and names the command of
            a preset of the other kind).
    """
    path = FOLDERS[kind] / f"{name}.yaml"
    if path.is_file():
        return path
    import difflib

    names = list_presets(kind)
    other = kind_of(name)
    if other is not None:
        raise UnknownNameError(f"{name!r} is a {other} preset, not a {kind} preset. Fix: use it "
                               f"with `{COMMANDS[other]} -c {name}`; {kind} presets are "
                               f"{', '.join(names)}.")
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown preset {name!r}.{hint} Presets: {', '.join(names)}. "
                           "Fix: use one of these names (`brainage config list`) or the path "
                           "of a YAML file.")


def resolve_config(name_or_path: str | Path, relative_to: Path | None = None,
                   kind: Kind = "train") -> Path:
    """The YAML file meant by a preset name or a path (relative to `relative_to` first).

    Raises:
        UnknownNameError: a bare name that is no preset of `kind`.
        NotFoundError: a path (with a folder or a .yaml suffix) that does not exist.
    """
    text = str(name_or_path)
    candidates = [Path(text)] if relative_to is None else [relative_to / text, Path(text)]
    for path in candidates:
        if path.is_file():
            return path
    looks_like_path = "/" in text or text.endswith((".yaml", ".yml"))
    if looks_like_path:
        raise NotFoundError(f"{text}: config file not found. Fix: check the path, or name a "
                            f"preset ({', '.join(list_presets(kind))}).")
    return preset_path(text, kind)


def resolve_gan_config(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """:func:`resolve_config` for GAN presets (``inherits:`` inside GAN presets)."""
    return resolve_config(name_or_path, relative_to, "gan")


#: The default of ``brainage train`` for prepared scans with tissue maps (the best measured
#: configuration on IXI, docs/benchmarks.md), and otherwise (the CPU network preset).
DEFAULT_WITH_TISSUES = "tissue_ridge"
DEFAULT_NETWORK = "quickstart"
#: Override prefixes that make sense for the classical default; any other ``--set`` (a
#: network field such as ``epochs`` or ``model.kwargs...``) picks the network preset.
_CLASSICAL_KEYS = ("classical.", "split.", "seed=", "repeats=")


def default_preset(has_tissues: bool, overrides: list[str], network_only: bool) -> str:
    """The preset ``brainage train`` uses without ``-c``.

    Args:
        has_tissues: The prepared scans have tissue maps (``prepare`` writes them by default).
        overrides: The ``--set key=value`` items given.
        network_only: An option that only networks take was given (``--cascade``,
            ``--init-from``, ``--synthetic``).
    """
    if not has_tissues or network_only:
        return DEFAULT_NETWORK
    if any(not item.startswith(_CLASSICAL_KEYS) for item in overrides):
        return DEFAULT_NETWORK
    return DEFAULT_WITH_TISSUES
