"""Fitted corrections read back from JSON, checked value by value before they are used.

A hand-edited or damaged ``bias_correction.json`` used to fail deep inside numpy (a string
coefficient in a matrix product) or, worse, silently give NaN corrected ages (a ``null``
coefficient); an ``interval_calibration.json`` with a bad quantile failed in ``float()``.
:func:`load_bias_correction` and :func:`load_intervals` refuse such files with one message
naming the file, every bad field, its value and the fix.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from brainage.errors import InputError, NotFoundError
from brainage.evaluation.bias import FILENAME, FORMAT, METHODS, POOLED, BiasCorrector
from brainage.evaluation.uncertainty import ConformalInterval
from brainage.io import parse_json_file

_FIX = ("restore the file from a copy of the run folder, or fit it again (retrain, or "
        "`brainage evaluate --fit-on ...`)")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def bias_problems(data: Any) -> list[str]:
    """What is wrong with a bias-correction dict (empty when it can be used)."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return [f"not a brainage bias correction (expected \"format\": {FORMAT!r})"]
    problems = []
    method = (data.get("params") or {}).get("method") if isinstance(data.get("params"), dict) \
        else None
    if method not in METHODS:
        problems.append(f"params.method is {method!r}; expected one of {', '.join(METHODS)}")
    models = data.get("models")
    if not isinstance(models, dict) or POOLED not in models:
        return [*problems, f"models is {models!r}; expected a dict with a {POOLED!r} fit"]
    for key, model in models.items():
        coef = model.get("coef") if isinstance(model, dict) else None
        if not isinstance(coef, dict) or not {"intercept", "age"} <= set(coef):
            problems.append(f"models.{key}.coef is {coef!r}; expected intercept, age, ...")
            continue
        problems += [f"models.{key}.coef.{term} is {value!r}; expected a finite number"
                     for term, value in coef.items() if not _number(value)]
        if method == "cole" and _number(coef["age"]) and coef["age"] <= 0:
            problems.append(f"models.{key}.coef.age is {coef['age']!r}; the cole correction "
                            "divides by it, so it must be positive")
        if not _count(model.get("n")):
            problems.append(f"models.{key}.n is {model.get('n')!r}; expected a subject count")
    if not _count(data.get("n_subjects")):
        problems.append(f"n_subjects is {data.get('n_subjects')!r}; expected a subject count")
    age_range = data.get("age_range")
    if not (isinstance(age_range, list) and len(age_range) == 2
            and all(_number(a) for a in age_range) and age_range[0] <= age_range[1]):
        problems.append(f"age_range is {age_range!r}; expected [min, max] in years")
    return problems


def load_bias_correction(path: str | os.PathLike[str]) -> BiasCorrector:
    """A fitted correction from a JSON file or a folder holding ``bias_correction.json``.

    Raises:
        BrainAgeError: missing, not JSON, or any field unusable (all of them named).
    """
    p = Path(path)
    p = p / FILENAME if p.is_dir() else p
    if not p.is_file():
        raise NotFoundError(f"{p}: bias correction not found. Fix: pass a run folder that "
                            f"holds {FILENAME}, or the JSON file itself.")
    data = parse_json_file(p, _FIX)
    problems = bias_problems(data)
    if problems:
        raise InputError(f"{p}: {'; '.join(problems)}. Fix: {_FIX}.")
    return BiasCorrector.from_dict(data)


def interval_problems(data: Any) -> list[str]:
    """What is wrong with an interval-calibration dict (empty when it can be used)."""
    if not isinstance(data, dict) or data.get("kind") != "conformal":
        return ["not a brainage interval calibration (expected \"kind\": \"conformal\")"]
    checks = {
        "alpha": (lambda v: _number(v) and 0 < v < 1, "a number in (0, 1), e.g. 0.1"),
        "method": (lambda v: v in ("absolute", "normalized", "asymmetric"),
                   "'absolute', 'normalized' or 'asymmetric'"),
        "eps": (lambda v: _number(v) and v >= 0, "a number >= 0"),
        "quantile": (lambda v: isinstance(v, int | float) and not isinstance(v, bool)
                     and v >= 0 and not math.isnan(v), "a half-width >= 0 in years"),
        "n_calibration": (_count, "a subject count"),
        "groups": (lambda v: _count(v) and v >= 1, "a number of groups >= 1"),
        "group_quantiles": (lambda v: isinstance(v, list) and all(
            _number(q) and q >= 0 for q in v), "a list of half-widths >= 0"),
        "group_edges": (lambda v: isinstance(v, list) and len(v) == max(
            len(data.get("group_quantiles") or []) - 1, 0) and all(map(_number, v))
            and v == sorted(v), "sorted ages, one fewer than group_quantiles"),
        "group_tails": (lambda v: isinstance(v, list) and len(v) == len(
            data.get("group_edges") or []) + 1 and all(
            isinstance(t, list) and len(t) == 2 and all(map(_number, t)) and t[0] <= t[1]
            for t in v), "one [low, high] offset pair per group, low <= high"),
    }
    return [f"{key} is {data.get(key)!r}; expected {what}"
            for key, (ok, what) in checks.items()
            if key in data or key in ("quantile", "n_calibration")
            if not ok(data.get(key))]


def load_intervals(path: str | os.PathLike[str]) -> ConformalInterval:
    """A calibrated :class:`ConformalInterval` from ``interval_calibration.json``.

    Raises:
        BrainAgeError: not JSON, or any field unusable (all of them named).
    """
    p = Path(path)
    data = parse_json_file(p, _FIX)
    problems = interval_problems(data)
    if problems:
        raise InputError(f"{p}: {'; '.join(problems)}. Fix: {_FIX}.")
    return ConformalInterval.from_dict(data)
