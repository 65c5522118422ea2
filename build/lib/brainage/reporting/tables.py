"""Turn metrics, model cards and specs into rows of strings for the report template."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

#: (key, label, decimals) of the headline metrics, in the order of the reporting standard.
METRICS: tuple[tuple[str, str, int], ...] = (
    ("mae", "MAE (years)", 2),
    ("rmse", "RMSE (years)", 2),
    ("pearson_r", "Pearson r (age, predicted)", 3),
    ("r2", "R²", 3),
    ("mean_gap", "Mean gap (years)", 2),
    ("gap_slope", "Slope of gap on age", 3),
    ("spearman_gap_age", "Spearman r (gap, age)", 3),
)
NOT_AVAILABLE = "n/a"


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def format_interval(r: dict[str, Any] | float | None, digits: int = 2) -> str:
    """``2.31 [2.10, 2.55]`` from ``{"estimate", "ci_low", "ci_high"}`` (or a bare number)."""
    if not isinstance(r, dict):
        est = _number(r)
        return NOT_AVAILABLE if est is None else f"{est:.{digits}f}"
    est, lo, hi = (_number(r.get(k)) for k in ("estimate", "ci_low", "ci_high"))
    if est is None:
        return NOT_AVAILABLE
    if lo is None or hi is None:
        return f"{est:.{digits}f}"
    return f"{est:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def format_value(value: Any, max_chars: int = 160) -> str:
    """Short display text of a scalar, list or mapping."""
    if value is None:
        return NOT_AVAILABLE
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value) if isinstance(value, str | int | bool) else json.dumps(value, default=str)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def flatten(obj: Any, prefix: str = "", max_rows: int = 200) -> list[tuple[str, str]]:
    """``[("a.b", "value"), ...]`` for nested mappings; lists of scalars stay one value."""
    rows: list[tuple[str, str]] = []

    def visit(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                visit(v, f"{key}.{k}" if key else str(k))
        else:
            rows.append((key or "value", format_value(value)))

    visit(obj, prefix)
    return rows[:max_rows]


def metric_rows(set_metrics: dict[str, Any]) -> list[dict[str, str]]:
    """Headline metric rows: label, uncorrected and corrected cells."""
    rows = []
    for key, label, digits in METRICS:
        cells = {v: format_interval((set_metrics.get(v) or {}).get(key), digits)
                 for v in ("uncorrected", "corrected")}
        rows.append({"label": label, **cells})
    return rows


def strata_rows(entries: list[dict[str, Any]], key: str) -> list[dict[str, str]]:
    """Per-site or per-age-bin MAE rows (``key`` is ``site`` or ``bin``)."""
    return [{"label": str(e.get(key)), "n": str(e.get("n", "")),
             "uncorrected": format_interval((e.get("uncorrected") or {}).get("mae")),
             "corrected": format_interval((e.get("corrected") or {}).get("mae"))}
            for e in entries]


def _age_text(age: dict[str, Any] | None) -> str:
    age = age or {}
    lo, hi, mean, sd = (_number(age.get(k)) for k in ("min", "max", "mean", "sd"))
    if lo is None or hi is None:
        return NOT_AVAILABLE
    text = f"{lo:.1f}–{hi:.1f}"
    if mean is not None:
        text += f", mean {mean:.1f}" + (f" (SD {sd:.1f})" if sd is not None else "")
    return text


def metric_sections(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per set (``overall`` first) for the metrics template."""
    out = []
    for name, s in (metrics.get("sets") or {}).items():
        out.append({
            "name": name, "n_with_age": s.get("n_with_age", NOT_AVAILABLE),
            "n_subjects": s.get("n_subjects", NOT_AVAILABLE), "age": _age_text(s.get("age")),
            "note": s.get("note"), "has_corrected": "corrected" in s,
            "rows": metric_rows(s) if "uncorrected" in s else [],
            "sites": strata_rows(s.get("per_site") or [], "site"),
            "bins": strata_rows(s.get("age_bins") or [], "bin"),
        })
    return out


def run_metrics_as_sets(raw: dict[str, Any]) -> dict[str, Any]:
    """A run's ``metrics.json`` (point estimates per set) in the evaluation format."""
    sets: dict[str, Any] = {}
    for version in ("uncorrected", "corrected"):
        for name, m in (raw.get(version) or {}).items():
            entry = sets.setdefault(name, {"n_with_age": m.get("n", NOT_AVAILABLE)})
            entry[version] = {k: {"estimate": m.get(k), "ci_low": None, "ci_high": None}
                              for k, _, _ in METRICS}
    bias = raw.get("bias_correction") or {}
    return {"sets": sets, "level": None, "n_boot": 0,
            "correction": {"available": bool(raw.get("corrected")),
                           "description": bias.get("formula") or "none recorded",
                           "note": bias.get("note")}}


def data_summary(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Counts of scans, subjects, sessions, sets, sites, sexes and groups; age summary."""
    age = df["age"].dropna()
    rows = [("scans", str(len(df))), ("participants", str(df["participant_id"].nunique())),
            ("scans with an age", str(len(age)))]
    if len(age):
        sd = f", SD {age.std(ddof=1):.1f}" if len(age) > 1 else ""
        rows.append(("age (years)", f"{age.min():.1f}–{age.max():.1f}, mean {age.mean():.1f}{sd}"))
    if "session" in df and df["session"].notna().any():
        rows.append(("sessions per participant (max)",
                     str(df.groupby("participant_id").size().max())))
    for col in ("set", "site", "sex", "group"):
        if col in df and df[col].notna().any():
            counts = df[col].fillna(NOT_AVAILABLE).astype(str).value_counts().sort_index()
            rows.append((col, ", ".join(f"{k} ({v})" for k, v in counts.items())))
    return rows


def group_rows(group_analysis: dict[str, Any] | None) -> list[dict[str, str]]:
    """Adjusted group differences of the gap (one row per gap column and group)."""
    rows = []
    for col, d in ((group_analysis or {}).get("difference") or {}).items():
        for g, c in (d.get("comparisons") or {}).items():
            rows.append({
                "gap": col, "group": f"{g} vs {d.get('reference')}",
                "effect": format_interval({"estimate": c.get("effect"), "ci_low": c.get("ci_low"),
                                           "ci_high": c.get("ci_high")}),
                "p": "n/a" if _number(c.get("p")) is None else f"{c['p']:.2g}",
                "d": format_interval({"estimate": c.get("cohen_d"),
                                      "ci_low": c.get("cohen_d_ci_low"),
                                      "ci_high": c.get("cohen_d_ci_high")}),
                "n": f"{c.get('n')} / {c.get('n_reference')}",
                "formula": str(d.get("formula", "")),
            })
    return rows


def classification_rows(group_analysis: dict[str, Any] | None) -> list[dict[str, str]]:
    """Group classification AUCs from the gap."""
    rows = []
    for g, c in ((group_analysis or {}).get("classification") or {}).items():
        auc, sd = _number(c.get("auc_mean")), _number(c.get("auc_sd"))
        rows.append({"group": f"{g} vs {c.get('reference')}",
                     "features": ", ".join(map(str, c.get("features", []))),
                     "auc": NOT_AVAILABLE if auc is None else
                     f"{auc:.3f}" + (f" ± {sd:.3f}" if sd is not None else ""),
                     "splits": str(c.get("n_splits", ""))})
    return rows


def longitudinal_rows(summary: dict[str, Any] | None) -> list[dict[str, str]]:
    """Mean rate of change of the gap (years of gap per year), overall and per group."""
    rows = []
    for key, entry in (summary or {}).items():
        if not key.endswith("_rate") or not isinstance(entry, dict):
            continue
        parts = [("all", entry.get("overall") or {})]
        parts += sorted((entry.get("per_group") or {}).items())
        for group, d in parts:
            rows.append({"measure": key.removesuffix("_rate"), "group": str(group),
                         "n": str(d.get("n", "")),
                         "rate": format_interval({"estimate": d.get("mean"),
                                                  "ci_low": d.get("ci_low"),
                                                  "ci_high": d.get("ci_high")}, 3)})
    return rows
