"""Brain-age bias correction as a fitted scikit-learn style estimator.

Notation: ``y`` chronological age, ``ŷ`` predicted age, ``δ = ŷ - y`` the gap.

* ``beheshti`` (Beheshti 2019 / Le 2018): fit ``δ = α·y + β``; ``ŷ_corr = ŷ - (α·y + β)``.
* ``cole`` (Cole 2018 / de Lange & Cole 2020): fit ``ŷ = a·y + b``; ``ŷ_corr = (ŷ - b) / a``.
* ``smith`` (Smith 2019): regress ``δ`` on ``y, y², …, y^degree`` and optional confounds;
  ``δ_corr`` is the residual and ``ŷ_corr = y + δ_corr``.

Every method needs the chronological age of the subjects it corrects: it removes the part
of the gap explained by age, so ``transform`` takes ``age`` as well as the prediction.
Fit on data the network did not train on and that you will not analyse (held-out
validation predictions, or a new cohort's controls); see ``docs/bias-correction.md``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from brainage.errors import BrainAgeError, InputError
from brainage.evaluation import _bias_design as design
from brainage.io import write_json

METHODS: tuple[str, ...] = ("beheshti", "cole", "smith")
POOLED = "__pooled__"
FILENAME = "bias_correction.json"
FORMAT = "brainage.bias_correction"
_MIN_COLE_SLOPE = 0.1


class CorrectionNotFittedError(NotFittedError, BrainAgeError):
    """A BiasCorrector was used before ``fit`` (or ``from_dict``)."""


class SameSubjectsWarning(UserWarning):
    """A correction is applied to subjects it was fitted on."""


class BiasCorrector(BaseEstimator):
    """Fitted brain-age bias correction (see the module docstring for the formulas).

    Args:
        method: ``"beheshti"``, ``"cole"`` or ``"smith"``.
        degree: Polynomial degree in age (``smith`` only; 1 for the others).
        confounds: Column names of extra covariates (``smith`` only); numeric columns
            enter as they are, others as one-hot levels.
        per_site: Fit one correction per site (plus a pooled one for fallback).
        min_subjects: Refuse to fit a correction on fewer subjects than this.
        site_fallback: ``"pooled"`` to use the pooled fit for sites with too few subjects
            (or unseen sites), ``"refuse"`` to raise instead.

    Attributes:
        models_: ``{site or "__pooled__": {"coef": {term: value}, "n": subjects}}``.
        confound_spec_: How each confound was encoded.
        fallback_sites_: Sites that use the pooled fit because they had too few subjects.
        n_subjects_: Subjects used to fit.
        age_range_: ``(min, max)`` age of the fitting data.
        fitted_ids_: Sorted subject ids used to fit, when given.
        fingerprint_: Hash of the fitting data (warns when the same data are corrected).
    """

    def __init__(self, method: str = "beheshti", degree: int = 1, confounds: tuple[str, ...] = (),
                 per_site: bool = False, min_subjects: int = 20,
                 site_fallback: str = "pooled") -> None:
        self.method = method
        self.degree = degree
        self.confounds = confounds
        self.per_site = per_site
        self.min_subjects = min_subjects
        self.site_fallback = site_fallback

    # ------------------------------------------------------------------ fitting
    def fit(self, age: Any, predicted: Any, confounds_df: pd.DataFrame | None = None,
            site: Any = None, subject_ids: Any = None) -> BiasCorrector:
        """Fit the correction.

        Args:
            age: ``(n,)`` chronological ages (no missing values).
            predicted: ``(n,)`` predicted ages.
            confounds_df: Table holding the ``confounds`` columns (``smith``).
            site: ``(n,)`` site labels (required with ``per_site``).
            subject_ids: ``(n,)`` subject ids; counted for ``min_subjects`` and remembered
                so that correcting the same subjects later warns.

        Returns:
            self

        Raises:
            BrainAgeError: too few subjects, missing values, or a degenerate fit.
        """
        design.check_params(self.method, self.degree, tuple(self.confounds), self.site_fallback)
        y, yhat = design.as_arrays(age, predicted, where="fit", allow_nan=False)
        ids = None if subject_ids is None else np.asarray(subject_ids, dtype=object)
        self.confound_spec_ = design.confound_spec(confounds_df, tuple(self.confounds), len(y))
        x = design.matrix(y, self.degree if self.method == "smith" else 1,
                          confounds_df, self.confound_spec_)
        n_subjects = design.count_subjects(len(y), ids)
        design.require_subjects(n_subjects, self.min_subjects, "the bias correction")
        models = {POOLED: self._fit_one(x, y, yhat, n_subjects)}
        self.fallback_sites_: list[str] = []
        if self.per_site:
            models.update(self._fit_sites(x, y, yhat, site, ids))
        self.models_ = models
        self.n_subjects_ = n_subjects
        self.age_range_ = (float(y.min()), float(y.max()))
        self.fitted_ids_ = None if ids is None else sorted({str(i) for i in ids})
        self.fingerprint_ = design.fingerprint(y, yhat)
        return self

    def _fit_one(self, x: np.ndarray, y: np.ndarray, yhat: np.ndarray,
                 n_subjects: int) -> dict[str, Any]:
        target = yhat if self.method == "cole" else yhat - y
        coef = design.least_squares(x, target)
        if self.method == "cole" and coef[1] < _MIN_COLE_SLOPE:
            raise InputError(
                f"Cole correction needs predictions that rise with age, but the fitted slope "
                f"of predicted on chronological age is {coef[1]:.3f} (< {_MIN_COLE_SLOPE}); "
                "dividing by it would blow up the noise. Fix: use method='beheshti'."
            )
        names = design.term_names(self.degree if self.method == "smith" else 1,
                                  self.confound_spec_)
        return {"coef": dict(zip(names, map(float, coef), strict=True)), "n": n_subjects}

    def _fit_sites(self, x: np.ndarray, y: np.ndarray, yhat: np.ndarray, site: Any,
                   ids: np.ndarray | None) -> dict[str, dict[str, Any]]:
        labels = design.site_labels(site, len(y), required=True)
        models = {}
        for label in sorted(set(labels[labels != ""])):
            rows = labels == label
            n = design.count_subjects(int(rows.sum()), None if ids is None else ids[rows])
            if n >= self.min_subjects:
                models[label] = self._fit_one(x[rows], y[rows], yhat[rows], n)
                continue
            if self.site_fallback == "refuse":
                design.require_subjects(n, self.min_subjects, f"the correction of site {label!r}")
            self.fallback_sites_.append(label)
            warnings.warn(f"site {label!r} has {n} subject(s), fewer than min_subjects="
                          f"{self.min_subjects}; it uses the pooled correction.", stacklevel=3)
        return models

    # ------------------------------------------------------------------ applying
    def transform(self, age: Any, predicted: Any, confounds_df: pd.DataFrame | None = None,
                  site: Any = None, subject_ids: Any = None) -> np.ndarray:
        """Bias-corrected predicted age.

        Args:
            age: ``(n,)`` chronological ages (needed by every method); NaN gives NaN.
            predicted: ``(n,)`` predicted ages.
            confounds_df: Table with the ``confounds`` columns (``smith``).
            site: ``(n,)`` site labels (``per_site``).
            subject_ids: ``(n,)`` ids; a warning is issued for subjects used to fit.

        Returns:
            ``(n,)`` corrected predicted ages.
        """
        self._check_fitted()
        y, yhat = design.as_arrays(age, predicted, where="transform", allow_nan=True)
        self._warn_same_subjects(y, yhat, subject_ids)
        degree = self.degree if self.method == "smith" else 1
        x = design.matrix(y, degree, confounds_df, self.confound_spec_)
        out = np.full(len(y), np.nan)
        for key, rows in self._rows_per_model(site, len(y)).items():
            coef = np.array(list(self.models_[key]["coef"].values()))
            fitted = x[rows] @ coef
            if self.method == "cole":
                out[rows] = (yhat[rows] - coef[0]) / coef[1]
            else:
                out[rows] = yhat[rows] - fitted
        return out

    correct = transform

    def corrected_gap(self, age: Any, predicted: Any, **kwargs: Any) -> np.ndarray:
        """Bias-corrected gap, ``transform(...) - age`` (same arguments as transform)."""
        return self.transform(age, predicted, **kwargs) - np.asarray(age, dtype=float)

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise CorrectionNotFittedError(
                "This BiasCorrector is not fitted yet. Call fit(age, predicted) on held-out "
                "predictions first, or load one with BiasCorrector.load(run_dir)."
            )

    def _rows_per_model(self, site: Any, n: int) -> dict[str, np.ndarray]:
        if not self.per_site:
            return {POOLED: np.ones(n, dtype=bool)}
        labels = design.site_labels(site, n, required=True)
        known = np.isin(labels, [k for k in self.models_ if k != POOLED])
        unseen = sorted(set(labels[~known]) - set(self.fallback_sites_))
        if unseen and self.site_fallback == "refuse":
            raise InputError(f"no site-specific correction for site(s) {unseen}; "
                                "fit on data from these sites or use site_fallback='pooled'.")
        if unseen:
            warnings.warn(f"no site-specific correction for site(s) {unseen}; "
                          "the pooled correction is used.", stacklevel=4)
        rows = {key: labels == key for key in set(labels[known])}
        rows[POOLED] = ~known
        return rows

    def _warn_same_subjects(self, y: np.ndarray, yhat: np.ndarray, subject_ids: Any) -> None:
        advice = ("their corrected gaps are pulled toward 0 and corrected metrics look "
                  "artificially good. Fit on held-out data (validation set or separate controls).")
        if subject_ids is not None and self.fitted_ids_ is not None:
            ids = {str(i) for i in np.asarray(subject_ids, dtype=object)}
            both = ids & set(self.fitted_ids_)
            if both:
                warnings.warn(f"{len(both)} of the {len(ids)} subject(s) being corrected were "
                              f"used to fit the bias correction; {advice}",
                              SameSubjectsWarning, stacklevel=3)
        elif design.fingerprint(y, yhat) == self.fingerprint_:
            warnings.warn(f"the bias correction is applied to exactly the data it was fitted on; "
                          f"{advice}", SameSubjectsWarning, stacklevel=3)

    # ------------------------------------------------------------------ reporting and storage
    @property
    def slope_(self) -> float:
        """Pooled age coefficient: α (beheshti, smith) or a (cole)."""
        self._check_fitted()
        return float(self.models_[POOLED]["coef"]["age"])

    @property
    def intercept_(self) -> float:
        """Pooled intercept: β (beheshti, smith) or b (cole)."""
        self._check_fitted()
        return float(self.models_[POOLED]["coef"]["intercept"])

    def formula(self, key: str = POOLED) -> str:
        """Human-readable fitted equation, e.g. ``gap = 12.1 - 0.301*age``."""
        self._check_fitted()
        lhs = "predicted_age" if self.method == "cole" else "gap"
        terms = [f"{v:+.4g}" + ("" if k == "intercept" else f"*{k}")
                 for k, v in self.models_[key]["coef"].items()]
        return f"{lhs} = " + " ".join(terms).lstrip("+")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (parameters and fitted state)."""
        self._check_fitted()
        params = self.get_params()
        params["confounds"] = list(params["confounds"])
        return {
            "format": FORMAT, "version": 1, "params": params,
            "formula": self.formula(), "models": self.models_,
            "confound_spec": self.confound_spec_, "fallback_sites": self.fallback_sites_,
            "n_subjects": self.n_subjects_, "age_range": list(self.age_range_),
            "fitted_ids": self.fitted_ids_, "fingerprint": self.fingerprint_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BiasCorrector:
        """Rebuild a fitted corrector from :meth:`to_dict` output."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not a brainage bias correction (expected format {FORMAT!r}).")
        params = dict(data["params"])
        params["confounds"] = tuple(params.get("confounds", ()))
        obj = cls(**params)
        obj.models_ = {k: {"coef": dict(v["coef"]), "n": int(v["n"])}
                       for k, v in data["models"].items()}
        obj.confound_spec_ = data.get("confound_spec", {})
        obj.fallback_sites_ = list(data.get("fallback_sites", []))
        obj.n_subjects_ = int(data["n_subjects"])
        obj.age_range_ = tuple(data["age_range"])
        obj.fitted_ids_ = data.get("fitted_ids")
        obj.fingerprint_ = data.get("fingerprint", "")
        return obj

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write JSON to `path` (a directory gets ``bias_correction.json``); returns the file."""
        p = Path(path)
        p = p / FILENAME if p.is_dir() else p
        write_json(p, self.to_dict())
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BiasCorrector:
        """Read a correction from a JSON file or a run folder holding ``bias_correction.json``."""
        return cls.from_dict(design.read_json(path, FILENAME))
