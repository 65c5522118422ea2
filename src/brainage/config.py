"""Typed configuration: dataclasses, overridden by YAML files and ``key=value`` flags.

Rules: unknown keys and values of the wrong type fail at load time
with the key path, the value and the expected type; there is no expression language.
The resolved config is saved with every run (:func:`to_dict` + YAML).
"""

from __future__ import annotations

import dataclasses
import reprlib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from brainage.errors import BrainAgeError, InputError, NotFoundError, WrongTypeError

T = TypeVar("T")
#: Most values (aliases expanded) a config file may hold: presets hold a few hundred, and
#: YAML aliases nest (``&a [*b, *b, ...]``) into billions when expanded.
MAX_VALUES = 100_000
#: Values in messages: short, however large or nested (a message never expands aliases).
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 4, 10, 10, 10
_REPR.maxstring, _REPR.maxother = 200, 200


def _show(value: Any) -> str:
    return _REPR.repr(value)


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a (nested) mapping, checking keys and types."""
    if not isinstance(data, Mapping):
        raise WrongTypeError(f"{where}: expected a mapping of options, got {_show(data)}. "
                             "Fix: write the section as 'key: value' lines.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    unknown = sorted((k for k in data if k not in fields), key=repr)  # keys may be 1, None
    if unknown:
        raise InputError(
            f"{where}: unknown option(s) {unknown}; valid options are {sorted(fields)}. "
            "Fix: correct the spelling or remove them."
        )
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except BrainAgeError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            raise InputError(f"{where}: got {_show(value)}; expected one of {list(args)}. "
                             "Fix: use one of these values.")
        return value
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_dict(tp, value, where)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise WrongTypeError(f"{where}: got {_show(value)}; expected a list. "
                                 "Fix: write it as [a, b, ...].")
        item = args[0] if args else Any
        seq = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple or tp is tuple else seq
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise WrongTypeError(f"{where}: got {_show(value)}; expected a mapping. "
                                 "Fix: write it as {key: value, ...}.")
        return dict(value)
    return _scalar(value, tp, where)


def _scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str | Path):
        return Path(value)
    if isinstance(tp, type) and isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    name = getattr(tp, "__name__", str(tp))
    raise WrongTypeError(f"{where}: got {_show(value)} ({type(value).__name__}); expected {name}. "
                         f"Fix: give a value of type {name}.")


def one_line(text: object) -> str:
    """`text` with every run of whitespace (newlines included) as one space."""
    return " ".join(str(text).split())


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain dict/list values suitable for YAML/JSON."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["optim.lr=1e-3", "epochs=5"]`` -> nested dict; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"override {item!r}: expected KEY=VALUE, e.g. optim.lr=0.001. Fix: add '='."
            )
        node = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(f"override {item!r}: {'.'.join(parts[:i + 1])} was set to a "
                                 f"value by an earlier override, so it has no options. Fix: "
                                 "set either the section's options or the section, not both.")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except (yaml.YAMLError, RecursionError) as exc:  # an undefined alias, a python/object tag, ...
            raise InputError(f"override {item!r}: the value is not a plain YAML value "
                             f"({one_line(exc)}). Fix: quote it, e.g. {key.strip()}='text'."
                             ) from exc
        _check_size(node[parts[-1]], f"override {item!r}")
    return out


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; `update` wins.

    A section of `update` that names its component (``{"name": ..., "kwargs": {...}}``)
    defines it completely: its ``kwargs`` start from empty instead of merging into the
    previous ones (another model's widths would not fit; a saved config must load exactly,
    not pick up a preset's extra arguments). Sections without ``name`` (such as the override
    ``model.kwargs.dropout=0.1``) merge key by key.
    """
    out = dict(base)
    for k, v in update.items():
        old = out.get(k)
        if isinstance(v, Mapping) and isinstance(old, Mapping):
            if "name" in v and "kwargs" in old:
                old = {**old, "kwargs": {}}
            out[k] = merge(old, v)
        else:
            out[k] = v
    return out


def read_yaml_mapping(path: str | Path) -> Mapping[str, Any]:
    """The top-level mapping of a YAML file (an empty file is an empty mapping).

    Raises:
        BrainAgeError: missing file, invalid YAML, or a top level that is not a mapping.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: config file not found. Fix: check the path.")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise InputError(f"{p}: values nested too deeply to be a config. Fix: check the file "
                         "(is it the config file?).") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{p}: not UTF-8 text ({exc}); expected a YAML config. Fix: save the "
                         "file as UTF-8 text (is it the config file?).") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not valid YAML ({exc}). Fix: correct the line it names.") from exc
    _check_size(loaded, str(p))
    return _check_mapping(loaded, str(p))


def _check_size(obj: Any, where: str) -> None:
    """Refuse a document that holds more than MAX_VALUES values once aliases are expanded
    (counting stops there, so a 'billion laughs' file costs no more than that)."""
    stack, seen = [obj], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise InputError(f"{where}: more than {MAX_VALUES:,} values once its YAML aliases "
                             "(*name) are expanded; expected a config of options. Fix: write "
                             "the values out, or remove the aliases.")
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set):
            stack.extend(item)


#: Finds the file a config's ``inherits:`` names: ``resolve(name, relative_to) -> Path``.
Resolver = Callable[[str, Path], Path]


def read_layers(path: str | Path, resolve: Resolver | None = None,
                _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config with the files it ``inherits:`` merged beneath it.

    ``inherits: NAME`` names another config (``resolve`` maps names such as presets to
    files; default: a path relative to this file). The chain may be as long as needed.

    Raises:
        BrainAgeError: a missing or invalid file, or a file that inherits from itself.
    """
    p = Path(path)
    if p.resolve() in _seen:
        chain = " -> ".join(str(s) for s in (*_seen, p.resolve()))
        raise InputError(f"{p}: configs inherit from each other in a loop ({chain}). "
                         "Fix: remove one of the 'inherits:' lines.")
    data = dict(read_yaml_mapping(p))
    parent = data.pop("inherits", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise InputError(f"{p}: inherits is {_show(parent)}; expected the name of a preset or a "
                         "config file. Fix: e.g. 'inherits: tsan_cpu'.")
    parent_path = resolve(parent, p.parent) if resolve else p.parent / parent
    return merge(read_layers(parent_path, resolve, (*_seen, p.resolve())), data)


def load_config(
    cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = (),
    resolve: Resolver | None = None,
) -> T:
    """Defaults of `cls`, then the YAML file at `path` (after the files it inherits from),
    then ``key=value`` overrides.

    Layers merge with :func:`merge` (a section switching ``name`` drops its old ``kwargs``).
    """
    data: dict[str, Any] = to_dict(cls())
    if path is not None:
        data = merge(data, read_layers(path, resolve))
    data = merge(data, parse_overrides(overrides))
    return from_dict(cls, data, str(path) if path else "config")


def _check_mapping(obj: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise WrongTypeError(f"{where}: expected a mapping of options at the top level. "
                             "Fix: write the file as 'key: value' lines.")
    return obj


def save_config(obj: Any, path: str | Path) -> None:
    """Write a resolved config as YAML, atomically."""
    from brainage.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(to_dict(obj), sort_keys=False))
