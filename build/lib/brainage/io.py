"""Small I/O helpers shared by every stage: atomic writes and tolerant table reading."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.errors import BrainAgeError

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
        raise BrainAgeError(f"{p}: not valid JSON ({exc}). Fix: {fix}.") from exc


def write_tsv(path: str | os.PathLike[str], df: pd.DataFrame) -> None:
    """Write a table as TSV with BIDS missing values (``n/a``), atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a")


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a CSV or TSV file as strings, with ``n/a`` and friends as missing.

    The separator is chosen from the extension (``.tsv`` tab, ``.csv`` comma) and
    otherwise sniffed. Values stay strings so validation can report the raw text.

    Raises:
        BrainAgeError: the file is missing, empty or not a table.
    """
    p = Path(path)
    if not p.is_file():
        raise BrainAgeError(f"{p}: table not found. Fix: check the path.")
    sep: str | None = {".tsv": "\t", ".csv": ","}.get(p.suffix.lower())
    try:
        df = pd.read_csv(
            p, sep=sep, engine="python" if sep is None else "c", dtype=str,
            na_values=MISSING, keep_default_na=False,
        )
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise BrainAgeError(
            f"{p}: could not be read as a table ({exc}). "
            "Fix: save it as tab- or comma-separated text with a header row."
        ) from exc
    df.columns = [str(c).strip() for c in df.columns]
    return df
