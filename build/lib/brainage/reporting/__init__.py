"""Reporting: figures (PNG bytes) and the self-contained HTML report (``brainage report``).

``write_report(source_dir, "report.html")`` reads a run folder or an evaluation folder and
writes one HTML page with every figure embedded. Submodules load matplotlib and Jinja2
only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["write_report", "collect_inputs", "build_context", "render_html"]


def __getattr__(name: str) -> Any:
    if name in ("write_report", "build_context", "render_html"):
        from brainage.reporting import report

        return getattr(report, name)
    if name == "collect_inputs":
        from brainage.reporting.sources import collect_inputs

        return collect_inputs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
