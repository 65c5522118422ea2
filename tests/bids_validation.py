"""Run the official BIDS validator (``bids-validator-deno``, in the test extras) offline.

The wheel ships the validator as one JavaScript bundle that its console script runs with
the ``deno`` runtime (another wheel) and network access allowed. Here the same bundle runs
with the network *denied* (``--deny-net --no-prompt``), so a validator that needed the
network would fail these tests loudly instead of passing on a machine that happens to be
online. A missing validator is a failure, never a skip: it is installed by ``make install``.

The warnings each writer is allowed are the table in ``docs/bids.md`` (read from there, so
the documentation and the tests cannot drift); any other warning, and any error, fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "bids.md"
FIX = "Fix: run `make install` (or `pip install -e '.[test]'`), which installs the test extras."


def validator_command() -> list[str]:
    """``deno run`` of the installed validator bundle with the network denied."""
    try:
        import bids_validator_deno
        from deno import find_deno_bin
    except ImportError as exc:
        pytest.fail(f"the official BIDS validator is not installed ({exc}). {FIX}")
    bundle = Path(bids_validator_deno.__file__).with_name("bids-validator.js")
    if not bundle.is_file():
        pytest.fail(f"{bundle}: not found; the bids-validator-deno wheel changed its layout. "
                    "Fix: update tests/bids_validation.py to the new layout.")
    return [os.fsdecode(find_deno_bin()), "run", "--no-prompt", "--allow-read", "--allow-env",
            "--deny-net", str(bundle)]


@dataclass
class Report:
    """The validator's findings for one dataset."""

    root: Path
    raw: dict[str, Any]
    issues: list[dict[str, Any]] = field(default_factory=list)

    def of(self, severity: str) -> list[dict[str, Any]]:
        return [i for i in self.issues if i["severity"] == severity]

    def codes(self, severity: str = "warning") -> set[tuple[str, str]]:
        """``(code, subCode or "")`` of the issues of one severity."""
        return {(i["code"], i.get("subCode") or "") for i in self.of(severity)}

    def files(self) -> int:
        return int(self.raw["summary"]["totalFiles"])

    def format(self, severity: str) -> str:
        lines = [f"{i.get('location', '')}: {i['code']} {i.get('subCode') or ''}"
                 f" {(i.get('issueMessage') or '').strip()[:200]}" for i in self.of(severity)]
        return "\n".join(lines[:60]) + (f"\n... ({len(lines)} in all)" if len(lines) > 60 else "")


def validate(root: Path, *, timeout: float = 180) -> Report:
    """Validate the dataset `root` offline; a validator that does not answer in JSON fails.

    Nested datasets (``derivatives/*``) are validated on their own, not with
    ``--recursive``: validator 3.0.2 then ignores the nested dataset's ``.bidsignore``
    (fixed upstream by bids-standard/bids-validator#331).
    """
    cmd = [*validator_command(), str(root), "--format", "json", "--max-rows", "-1"]
    env = {**os.environ, "NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=root.parent)
    try:
        raw = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"bids-validator on {root} (exit {proc.returncode}) gave no JSON report:\n"
                    f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return Report(root, raw, raw["issues"]["issues"])


def accepted_warnings(writer: str) -> set[tuple[str, str]]:
    """``(code, subCode)`` pairs ``docs/bids.md`` accepts for `writer` (its table rows
    ``| writer | `CODE` | subCode, subCode | why |``; ``-`` for no subCode)."""
    rows = re.findall(r"^\|\s*([\w ,-]+?)\s*\|\s*`([A-Z_]+)`\s*\|([^|]*)\|[^|]*\S[^|]*\|\s*$",
                      DOCS.read_text(), flags=re.M)
    out: set[tuple[str, str]] = set()
    for writers, code, subs in rows:
        if writer in [w.strip() for w in writers.split(",")]:
            out |= {(code, "" if s.strip() in ("", "-") else s.strip()) for s in subs.split(",")}
    return out


def assert_valid(report: Report, writer: str) -> None:
    """No error, and no warning other than those ``docs/bids.md`` accepts for `writer`."""
    assert not report.of("error"), f"BIDS validator errors in {report.root}:\n" \
        + report.format("error")
    extra = report.codes("warning") - accepted_warnings(writer)
    assert not extra, (f"warnings not accepted in docs/bids.md for {writer!r}: "
                       f"{sorted(extra)}\n" + report.format("warning"))
