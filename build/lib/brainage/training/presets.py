"""Training presets shipped inside the package (``src/brainage/configs/*.yaml``).

``brainage train -c tsan`` and ``inherits: tsan_cpu`` name a preset; a path to a YAML file
works wherever a name does. ``brainage config list`` shows them, ``brainage config show
NAME`` prints one fully resolved.
"""

from __future__ import annotations

from pathlib import Path

from brainage.errors import NotFoundError, UnknownNameError

#: Folder of the shipped presets.
PRESETS_DIR = Path(__file__).resolve().parent.parent / "configs"


def list_presets() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def describe(name: str) -> str:
    """The first comment line of a preset (its one-line description)."""
    for line in preset_path(name).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def preset_path(name: str) -> Path:
    """The file of preset `name`.

    Raises:
        UnknownNameError: no such preset; the message lists them.
    """
    path = PRESETS_DIR / f"{name}.yaml"
    if path.is_file():
        return path
    import difflib

    close = difflib.get_close_matches(name, list_presets(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UnknownNameError(f"unknown preset {name!r}.{hint} Presets: {', '.join(list_presets())}. "
                           "Fix: use one of these names (`brainage config list`) or the path "
                           "of a YAML file.")


def resolve_config(name_or_path: str | Path, relative_to: Path | None = None) -> Path:
    """The YAML file meant by a preset name or a path (relative to `relative_to` first).

    Raises:
        UnknownNameError: a bare name that is no preset.
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
                            f"preset ({', '.join(list_presets())}).")
    return preset_path(text)
