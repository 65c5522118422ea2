"""Design matrices and input checks shared by the bias-correction estimators."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import InputError, NotFoundError
from brainage.io import parse_json_file


def check_params(method: str, degree: int, confounds: tuple[str, ...], fallback: str) -> None:
    """Validate BiasCorrector parameters (at fit time, as scikit-learn does)."""
    methods = ("beheshti", "cole", "smith")
    if method not in methods:
        raise InputError(f"unknown bias-correction method {method!r}; "
                            f"expected one of {', '.join(methods)}.")
    if method != "smith" and (degree != 1 or confounds):
        raise InputError(f"method {method!r} is linear in age without confounds; "
                            "use method='smith' for degree > 1 or confounds.")
    if not 1 <= int(degree) <= 3:
        raise InputError(f"degree must be 1, 2 or 3; got {degree}.")
    if fallback not in ("pooled", "refuse"):
        raise InputError(f"site_fallback must be 'pooled' or 'refuse'; got {fallback!r}.")


def as_arrays(age: Any, predicted: Any, where: str, allow_nan: bool) -> tuple[np.ndarray, ...]:
    """Ages and predictions as equal-length float vectors.

    Raises:
        BrainAgeError: lengths differ, values are not numbers, or (fit) values are missing.
    """
    try:
        y = np.asarray(age, dtype=float).ravel()
        yhat = np.asarray(predicted, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"bias correction {where}: ages and predictions must be numbers "
                            f"({exc}).") from exc
    if y.shape != yhat.shape:
        raise InputError(f"bias correction {where}: {y.size} ages but {yhat.size} predictions; "
                            "pass one age per prediction.")
    if not allow_nan and not (np.isfinite(y).all() and np.isfinite(yhat).all()):
        bad = int((~np.isfinite(y) | ~np.isfinite(yhat)).sum())
        raise InputError(f"bias correction {where}: {bad} row(s) with a missing age or "
                            "prediction; drop them before fitting.")
    return y, yhat


def count_subjects(n_rows: int, ids: np.ndarray | None) -> int:
    """Distinct subjects (rows when ids are unknown)."""
    return n_rows if ids is None else len({str(i) for i in ids})


def require_subjects(n: int, minimum: int, what: str) -> None:
    """Refuse to fit `what` on fewer than `minimum` subjects."""
    if n < minimum:
        raise InputError(
            f"refusing to fit {what} on {n} subject(s); at least {minimum} are needed "
            "(min_subjects). Fix: fit on more subjects (e.g. all controls, or pool sites), "
            "or lower min_subjects if you accept an unstable correction."
        )


def site_labels(site: Any, n: int, required: bool) -> np.ndarray:
    """Site labels as strings (missing -> ``""``)."""
    if site is None:
        if required:
            raise InputError("per-site bias correction needs a site label for every row; "
                                "pass site=... (a 'site' column).")
        return np.full(n, "", dtype=object)
    s = pd.Series(np.asarray(site, dtype=object).ravel())
    if len(s) != n:
        raise InputError(f"{len(s)} site labels for {n} rows; pass one per row.")
    return s.map(lambda v: "" if pd.isna(v) else str(v)).to_numpy(dtype=object)


def confound_spec(df: pd.DataFrame | None, names: tuple[str, ...], n: int) -> dict[str, Any]:
    """Learn how each confound is encoded: numeric (centred) or categorical (levels)."""
    spec: dict[str, Any] = {}
    for name in names:
        col = _column(df, name, n)
        num = pd.to_numeric(col, errors="coerce")
        if num.notna().all():
            spec[name] = {"kind": "numeric", "center": float(num.mean())}
            continue
        if col.isna().any():
            raise InputError(f"confound {name!r} has missing values; fill or drop those rows.")
        spec[name] = {"kind": "categorical", "levels": sorted({str(v) for v in col})}
    return spec


def _column(df: pd.DataFrame | None, name: str, n: int) -> pd.Series:
    if df is None or name not in df.columns:
        raise NotFoundError(f"confound {name!r} not found; pass confounds_df with that column.")
    if len(df) != n:
        raise InputError(f"confounds_df has {len(df)} rows for {n} ages.")
    return df[name].reset_index(drop=True)


def term_names(degree: int, spec: dict[str, Any]) -> list[str]:
    """Column names of :func:`matrix`: intercept, age, age^2, ..., confound terms."""
    names = ["intercept", "age"] + [f"age^{p}" for p in range(2, degree + 1)]
    for name, s in spec.items():
        if s["kind"] == "numeric":
            names.append(name)
        else:
            names += [f"{name}[{level}]" for level in s["levels"][1:]]
    return names


def matrix(y: np.ndarray, degree: int, df: pd.DataFrame | None,
           spec: dict[str, Any]) -> np.ndarray:
    """Design ``(n, p)``: 1, y, ..., y^degree, centred numeric and one-hot categorical confounds.

    Raises:
        BrainAgeError: a confound is missing or holds a level unseen at fit time.
    """
    cols = [np.ones_like(y)] + [y**p for p in range(1, degree + 1)]
    for name, s in spec.items():
        col = _column(df, name, len(y))
        if s["kind"] == "numeric":
            cols.append(pd.to_numeric(col, errors="coerce").to_numpy(dtype=float) - s["center"])
            continue
        text = col.map(lambda v: None if pd.isna(v) else str(v))
        unseen = sorted(set(text.dropna()) - set(s["levels"]))
        if unseen:
            raise InputError(f"confound {name!r} has level(s) {unseen} not seen when the "
                                f"correction was fitted (known: {s['levels']}).")
        unknown = text.isna().to_numpy()
        for level in s["levels"][1:]:
            col_level = (text == level).to_numpy(dtype=float)
            col_level[unknown] = np.nan  # a missing confound gives a missing correction
            cols.append(col_level)
    return np.stack(cols, axis=1)


def least_squares(x: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of `target` on the columns of `x` (scaled for stability).

    Raises:
        BrainAgeError: the design is degenerate (e.g. every age the same): a least-squares
            "fit" would be an arbitrary minimum-norm solution, a correction fitted on nothing.
    """
    scale = np.abs(x).max(axis=0)
    scale[scale == 0] = 1.0
    coef, _res, rank, _sv = np.linalg.lstsq(x / scale, target, rcond=None)
    if rank < x.shape[1]:
        ages = np.unique(x[:, 1]) if x.shape[1] > 1 else np.array([])
        what = (f"every age is {ages[0]:g}" if ages.size == 1 else
                "the ages (or confounds) are collinear")
        raise InputError(
            f"cannot fit a bias correction: {what}, so the gap's dependence on age is "
            "undefined. Fix: fit it on subjects spanning a range of ages (e.g. the "
            "training run's correction, or controls of several ages).")
    return coef / scale


def fingerprint(y: np.ndarray, yhat: np.ndarray) -> str:
    """Hash of ages and predictions (rounded), to recognise the fitting data later."""
    data = np.round(np.stack([y, yhat]), 6)
    return hashlib.sha1(np.ascontiguousarray(data).tobytes()).hexdigest()


def read_json(path: str | os.PathLike[str], filename: str) -> Any:
    """Read JSON from a file, or from `filename` inside a folder."""
    p = Path(path)
    p = p / filename if p.is_dir() else p
    if not p.is_file():
        raise NotFoundError(f"{p}: bias correction not found. Fix: pass a run folder that "
                            f"holds {filename}, or the JSON file itself.")
    return parse_json_file(p, "refit the bias correction")
