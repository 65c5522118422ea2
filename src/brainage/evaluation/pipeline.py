"""``brainage evaluate`` as a Python function: read, correct, measure, analyse, write.

Output folder (written atomically: built in a temporary sibling and renamed, so nothing
is left behind on failure):

* ``metrics.json``: every metric per set, uncorrected and corrected, with intervals, the
  description of the correction and, for longitudinal data, the rate summary;
* ``metrics.tsv``: the same as a long table (set x stratum x correction x metric);
* ``predictions_corrected.tsv``: the input table with ``corrected_age``/``corrected_gap``;
* ``bias_correction.json``: when the correction was fitted here (``fit_on``);
* ``group_analysis.json``: when the table has groups including the reference group;
* ``longitudinal.tsv``: when some participants have several sessions.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.predictions import (
    not_predicted_note,
    read_predictions,
    split_not_predicted,
    write_predictions,
)
from brainage.errors import BrainAgeError, InputError
from brainage.evaluation import group as group_mod
from brainage.evaluation import longitudinal as long_mod
from brainage.evaluation.bias import BiasCorrector
from brainage.evaluation.correction_source import correct_predictions
from brainage.evaluation.crossfit import fit_on_table
from brainage.evaluation.metrics import compute_metrics, json_ready, metrics_table
from brainage.evaluation.stored import load_bias_correction
from brainage.io import atomic_path, write_json, write_tsv

_SELECTOR = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(==|!=)\s*(.*?)\s*$")


@dataclass
class EvaluationResult:
    """What :func:`run_evaluation` computed and wrote."""

    output_dir: Path
    metrics: dict[str, Any]
    group_analysis: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_selector(text: str) -> tuple[str, str, str]:
    """Parse ``column==value`` or ``column!=value`` (quotes around the value optional).

    Raises:
        BrainAgeError: anything else (no expressions are evaluated).
    """
    m = _SELECTOR.match(text or "")
    if not m or not m.group(3).strip("'\""):
        raise InputError(f"cannot read the selection {text!r}; expected COLUMN==VALUE or "
                            "COLUMN!=VALUE, e.g. group==control.")
    return m.group(1), m.group(2), m.group(3).strip("'\"")


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def select_rows(df: pd.DataFrame, text: str) -> np.ndarray:
    """Boolean mask of the rows matching a selector; rows missing the column never match."""
    col, op, value = parse_selector(text)
    if col not in df.columns:
        raise InputError(f"selection {text!r}: no column {col!r}; columns are "
                            f"{list(df.columns)}.")
    present = df[col].notna().to_numpy()
    number = _as_number(value) if pd.api.types.is_numeric_dtype(df[col]) else None
    if number is not None:
        # A numeric column (`is_control==1` read as 1.0 when the column has gaps) is
        # compared as numbers, so `1`, `1.0` and `1e0` select the same rows.
        equal = np.isclose(df[col].to_numpy(dtype=float), number, rtol=0.0, atol=1e-9)
    else:
        equal = (df[col].astype(str).str.strip() == value).to_numpy()
    mask = present & (equal if op == "==" else ~equal)
    if not mask.any():
        raise InputError(f"selection {text!r} matches no row; values of {col!r} are "
                            f"{sorted(map(str, df[col].dropna().unique()))[:20]}.")
    return mask


def run_evaluation(predictions: str | os.PathLike[str], output_dir: str | os.PathLike[str],
                   correction: str | os.PathLike[str] | None = None, method: str | None = None,
                   fit_on: str | None = None, per_site: bool = False, n_boot: int = 1000,
                   seed: int = 0, folds: int = 5, reference: str = "control",
                   n_splits: int = 100) -> EvaluationResult:
    """Evaluate a predictions table and write the results folder; the arguments are those
    of :func:`brainage.evaluate`, which calls this (`output_dir` is its `output`).

    Raises:
        BrainAgeError: invalid input or options; nothing is written.
    """
    out_dir = Path(output_dir)
    _check_output_dir(out_dir)
    df, failed = split_not_predicted(read_predictions(predictions))
    notes: list[str] = [n for n in [not_predicted_note(failed)] if n]
    if not df["age"].notna().any():
        raise InputError(f"{predictions}: no predicted row has an age, so there is nothing "
                            "to evaluate. Fix: add chronological ages to the 'age' column.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        corrected, info, fitted = _correct(df, correction, method, fit_on, per_site, folds, seed)
    notes += [f"warning: {w.message}" for w in caught]
    metrics = compute_metrics(corrected, info, n_boot=n_boot, seed=seed)
    metrics["notes"] = notes  # the same list: later notes are recorded too
    groups = _group_analysis(corrected, reference, seed, n_splits, notes)
    rates = None
    if long_mod.has_repeated_sessions(corrected):
        rates = long_mod.gap_change_rates(corrected)
        metrics["longitudinal"] = long_mod.summarise_rates(rates)
    result = EvaluationResult(out_dir, metrics, groups, notes=notes)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        _write(tmp, result, corrected, fitted, rates)
        result.files = sorted(p.name for p in tmp.iterdir())
    return result


def _write(folder: Path, result: EvaluationResult, corrected: pd.DataFrame,
           fitted: BiasCorrector | None, rates: pd.DataFrame | None) -> None:
    write_json(folder / "metrics.json", json_ready(result.metrics))
    write_tsv(folder / "metrics.tsv", metrics_table(result.metrics))
    write_predictions(folder / "predictions_corrected.tsv", corrected)
    if fitted is not None:
        fitted.save(folder / "bias_correction.json")
    if result.group_analysis is not None:
        write_json(folder / "group_analysis.json", json_ready(result.group_analysis))
    if rates is not None:
        write_tsv(folder / "longitudinal.tsv", rates.round(4))


def _check_output_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is a file; choose a folder for the evaluation output.")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / "metrics.json").is_file():
        raise InputError(f"{out_dir} is not empty and not a previous evaluation; it would be "
                            "replaced. Fix: choose a new or empty output folder.")


def _correct(df: pd.DataFrame, correction: Any, method: str | None, fit_on: str | None,
             per_site: bool, folds: int,
             seed: int) -> tuple[pd.DataFrame, dict[str, Any], BiasCorrector | None]:
    if correction is not None:
        if fit_on or method or per_site:
            raise InputError("--correction uses a correction fitted elsewhere; it cannot be "
                                "combined with --fit-on, --method or --per-site.")
        corrector = load_bias_correction(correction)  # every bad field named
        out, info = correct_predictions(df, corrector)
        info["path"] = str(correction)
        return out, info, None
    if fit_on:
        corrector = BiasCorrector(method=method or "beheshti", per_site=per_site)
        fit_on_table(df, corrector, select_rows(df, fit_on))
        out, info = correct_predictions(df, corrector)
        info.update(source="fit_on", fit_on=fit_on,
                    description=f"{corrector.method} correction fitted on the "
                                f"{corrector.n_subjects_} subjects with {fit_on} "
                                f"({corrector.formula()})")
        return out, info, corrector
    mode = "crossfit" if (method or per_site) else None
    kwargs = {"per_site": True} if per_site else {}
    out, info = correct_predictions(df, mode, method=method or "beheshti", k=folds, seed=seed,
                                    **kwargs)
    return out, info, None


def _group_analysis(df: pd.DataFrame, reference: str, seed: int, n_splits: int,
                    notes: list[str]) -> dict[str, Any] | None:
    if "group" not in df.columns or df["group"].dropna().nunique() < 2:
        return None
    labels = set(df["group"].dropna().astype(str))
    if reference not in labels:
        notes.append(f"group analysis skipped: reference group {reference!r} not in "
                     f"{sorted(labels)} (use --reference).")
        return None
    base = long_mod.baseline_rows(df)
    out: dict[str, Any] = {"reference": reference, "unit": "one scan per participant "
                           "(the earliest)", "difference": {}, "classification": {}}
    gap_cols = [c for c in ("corrected_gap", "gap") if c in base and base[c].notna().any()]
    for col in gap_cols:
        try:
            out["difference"][col] = group_mod.group_difference(base, reference=reference,
                                                                gap_col=col)
        except (BrainAgeError, ValueError) as exc:
            notes.append(f"group difference on {col!r} skipped: {exc}")
    for g in sorted(labels - {reference}):
        try:
            out["classification"][g] = group_mod.classify_groups(
                base, positive=g, reference=reference, features=gap_cols[:1], seed=seed,
                n_splits=n_splits)
        except BrainAgeError as exc:
            notes.append(f"classification of {g!r} vs {reference!r} skipped: {exc}")
    return out


_SHOWN = (("mae", "MAE"), ("pearson_r", "r"), ("mean_gap", "mean gap"),
          ("gap_slope", "slope gap~age"), ("spearman_gap_age", "Spearman gap~age"))


def format_summary(result: EvaluationResult) -> str:
    """Short terminal summary: headline metrics per set, the correction used, notes."""
    m = result.metrics
    lines = [f"Bias correction: {m['correction']['description'].rstrip('.')}."]
    pct = round(100 * m["level"])
    for name, s in m["sets"].items():
        lines.append(f"\n[{name}] {s['n_with_age']} scans with age, {s['n_subjects']} subjects")
        if "uncorrected" not in s:
            lines.append(f"  {s.get('note', 'no metrics')}")
            continue
        lines.append(f"  {'metric':<18}{'uncorrected (' + str(pct) + '% CI)':<30}corrected")
        undefined = s.get("undefined", {})
        for key, label in _SHOWN:
            cells = ["undefined" if key in undefined and v in s else
                     _cell(s[v][key]) if v in s else "n/a" for v in ("uncorrected", "corrected")]
            lines.append(f"  {label:<18}{cells[0]:<30}{cells[1]}")
        for why in dict.fromkeys(undefined.values()):
            shown = [lab for key, lab in _SHOWN if undefined.get(key) == why]
            lines.append(f"  {', '.join(shown)} undefined: {why}")
    if result.group_analysis:
        for col, d in result.group_analysis["difference"].items():
            for g, c in d["comparisons"].items():
                lines.append(f"\n{g} vs {d['reference']} ({col}, adjusted): "
                             f"{c['effect']:+.2f} y [{c['ci_low']:.2f}, {c['ci_high']:.2f}], "
                             f"p={c['p']:.2g}, d={c['cohen_d']:.2f}")
        for g, c in result.group_analysis["classification"].items():
            lines.append(f"{g} vs {c['reference']} (RBF SVM on {c['features'][0]}): AUC "
                         f"{c['auc_mean']:.3f} ± {c['auc_sd']:.3f} over {c['n_splits']} splits")
    lines += [""] + result.notes + [f"Wrote {', '.join(result.files)} to {result.output_dir}"]
    return "\n".join(lines)


def _cell(r: dict[str, float | None]) -> str:
    if r["estimate"] is None:
        return "n/a"
    if r["ci_low"] is None:
        return f"{r['estimate']:.3f}"
    return f"{r['estimate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
