"""Small I/O helpers shared by every stage: atomic writes and tolerant table reading."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.errors import InputError, NotFoundError, Problem, ValidationError

#: Strings read as missing in user tables (BIDS uses ``n/a``).
MISSING = ["n/a", "N/A", "NA", "na", "NaN", "nan", ""]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling path; rename it onto `path` only if the block succeeds.

    Works for files and directories: whatever the block creates at the temporary path
    replaces `path`. A failing block leaves `path` untouched and removes the temporary.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        if final.is_dir() and tmp.is_dir():
            backup = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, backup)
            os.replace(tmp, final)
            _remove(backup)
        else:
            os.replace(tmp, final)
    finally:
        _remove(tmp)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def parse_json_file(path: str | os.PathLike[str], fix: str = "restore or regenerate the file"
                    ) -> Any:
    """Parse a JSON file that exists; malformed content raises a clear error.

    Callers check existence themselves (each knows what a missing file means).

    Raises:
        BrainAgeError: the file is not valid UTF-8 JSON (the message names it and `fix`).
    """
    p = Path(path)
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not valid JSON ({exc}). Fix: {fix}.") from exc
    except RecursionError as exc:  # json decodes nested arrays recursively
        raise InputError(f"{p}: values nested too deeply to be a brainage file. Fix: {fix}."
                         ) from exc


def write_tsv(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write a table as TSV with BIDS missing values (``n/a``), atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a")


class TableError(ValidationError):
    """A file that is not a well-formed table; ``problems`` name its rows where they can."""


def read_table(path: str | os.PathLike[str], *, as_written: bool = False) -> pd.DataFrame:
    """Read a CSV or TSV file as strings, with ``n/a`` and friends as missing.

    The separator is chosen from the extension (``.tsv`` tab, ``.csv`` comma) and
    otherwise sniffed. Values stay strings so validation can report the raw text;
    ``as_written=True`` keeps even the missing markers as written (``NaN``, ``""``).

    Raises:
        BrainAgeError: the file is missing or empty.
        TableError: not a table: rows with more fields than the header (each named),
            a column named twice, undecodable text.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"{p}: table not found. Fix: check the path.")
    sep: str | None = {".tsv": "\t", ".csv": ","}.get(p.suffix.lower())
    try:
        df = pd.read_csv(
            p, sep=sep, engine="python" if sep is None else "c", dtype=str,
            na_values=[] if as_written else MISSING, keep_default_na=False,
            na_filter=not as_written,
        )
    except pd.errors.EmptyDataError as exc:
        raise InputError(f"{p}: the file is empty; expected a table with a header row. "
                            "Fix: check the file (it may not have been written).") from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise TableError(_shape_problems(p, sep) or [Problem(
            str(p), expected="a tab- or comma-separated table with a header row (UTF-8)",
            fix="save it as .tsv or .csv text", value=" ".join(str(exc).split()))], str(p)
        ) from exc
    if not isinstance(df.index, pd.RangeIndex):
        # Data rows with more fields than the header: pandas silently takes the first
        # field(s) as an index, shifting every value one column left (ids lost).
        raise TableError(_shape_problems(p, sep) or [Problem(
            str(p), expected="as many fields in every row as in the header",
            fix="remove the extra field(s) or quote a value that holds the separator")], str(p))
    names = _header(p, sep)
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise TableError([Problem(
            str(p), expected=f"each column named once (the header is {', '.join(names)})",
            fix="rename or remove the repeated column(s)", value=", ".join(repeated))], str(p))
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _header(path: Path, sep: str | None) -> list[str]:
    """Column names exactly as written (pandas renames a repeated ``age`` to ``age.1``)."""
    head = pd.read_csv(path, sep=sep, engine="python" if sep is None else "c", dtype=str,
                       header=None, nrows=1, keep_default_na=False)
    return [str(c).strip() for c in head.iloc[0].tolist()]


def _sniff(line: str) -> str:
    try:
        return csv.Sniffer().sniff(line, delimiters="\t,;|").delimiter
    except csv.Error:
        return ","


def _shape_problems(path: Path, sep: str | None) -> list[Problem]:
    """One Problem per row whose number of fields differs from the header's."""
    try:
        text = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    lines = [line for line in text if line.strip()]
    if not lines:
        return []
    delimiter = sep or _sniff(lines[0])
    rows = list(csv.reader(lines, delimiter=delimiter))
    width = len(rows[0])
    what = "tab" if delimiter == "\t" else repr(delimiter)
    return [Problem(str(path), expected=f"{width} {what}-separated fields, like the header",
                    fix="remove the extra field(s) or quote a value that holds the separator",
                    value=f"{len(row)} fields", row=i)
            for i, row in enumerate(rows[1:], start=1) if len(row) > width]
