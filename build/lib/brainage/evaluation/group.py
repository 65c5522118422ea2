"""Group analysis of the brain-age gap.

* :func:`group_difference`: difference in (corrected) gap between each group and a
  reference group, by OLS with age, age², sex and site as covariates (statsmodels),
  with its confidence interval, p value and a covariate-adjusted Cohen's d.
* :func:`classify_groups`: TSAN's downstream test: an RBF SVM (C=10, balanced classes)
  separates a group from the reference using the gap, over stratified shuffle splits;
  the AUC is computed from predicted probabilities (the public code used hard labels,
  which turns the ROC curve into a single point).

Use one scan per subject (e.g. :func:`brainage.evaluation.longitudinal.baseline_rows`):
repeated sessions of one subject are not independent observations.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from brainage.errors import InputError, NotFoundError

COVARIATES: tuple[str, ...] = ("age", "age2", "sex", "site")
_CATEGORICAL = ("sex", "site")


def _groups(df: pd.DataFrame, group_col: str, reference: str) -> list[str]:
    if group_col not in df.columns:
        raise InputError(f"no column {group_col!r} in the table; a group analysis needs one.")
    groups = sorted(str(g) for g in df[group_col].dropna().unique())
    if reference not in groups:
        raise NotFoundError(f"reference group {reference!r} not found in column {group_col!r} "
                            f"(groups: {groups}). Fix: pass the reference group's label.")
    if len(groups) < 2:
        raise InputError(f"only one group ({reference!r}) in column {group_col!r}; "
                            "a group analysis needs at least two.")
    return [g for g in groups if g != reference]


def group_difference(df: pd.DataFrame, group_col: str = "group", reference: str = "control",
                     covariates: Sequence[str] = COVARIATES, gap_col: str = "corrected_gap",
                     level: float = 0.95) -> dict[str, Any]:
    """Covariate-adjusted difference in gap between each group and `reference`.

    Model: ``gap ~ C(group) + age + age2 + C(sex) + C(site)`` (OLS); ``age2`` is the
    squared centred age. Covariates that are constant in the data (e.g. a single site)
    or absent are dropped and listed. Rows missing the gap, group or a kept covariate
    are left out.

    Returns:
        ``{"reference", "gap_column", "n", "covariates", "dropped_covariates", "formula",
        "comparisons": {group: {"effect", "ci_low", "ci_high", "p", "cohen_d",
        "cohen_d_ci_low", "cohen_d_ci_high", "n", "n_reference", "mean_gap",
        "mean_gap_reference"}}}``; effects in years.
    """
    import statsmodels.formula.api as smf

    others = _groups(df, group_col, reference)
    data, kept, dropped = _model_frame(df, group_col, covariates, gap_col)
    terms = [f"C({c})" if c in _CATEGORICAL else c for c in kept]
    formula = " + ".join([f"C(_group, Treatment(reference={reference!r}))"] + terms)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = smf.ols(f"_gap ~ {formula}", data=data).fit()
    out: dict[str, Any] = {
        "reference": reference, "gap_column": gap_col, "n": int(len(data)),
        "covariates": kept, "dropped_covariates": dropped,
        "formula": f"{gap_col} ~ " + " + ".join([group_col, *kept]),
        "level": level, "comparisons": {},
        "warnings": sorted({str(w.message) for w in caught}),  # e.g. collinear covariates
    }
    ref = data["_gap"][data["_group"] == reference]
    for g in others:
        name = f"C(_group, Treatment(reference={reference!r}))[T.{g}]"
        if name in fit.params.index:
            grp = data["_gap"][data["_group"] == g]
            out["comparisons"][g] = _comparison(fit, name, grp, ref, level)
    return out


def _comparison(fit: Any, name: str, grp: pd.Series, ref: pd.Series,
                level: float) -> dict[str, Any]:
    """Effect, interval, p and covariate-adjusted Cohen's d (effect / residual SD)."""
    low, high = fit.conf_int(alpha=1 - level).loc[name]
    effect = float(fit.params[name])
    d = effect / float(np.sqrt(fit.mse_resid))
    n1, n0 = len(grp), len(ref)
    d_half = _z(level) * np.sqrt(1 / n1 + 1 / n0 + d * d / (2 * (n1 + n0)))
    return {
        "effect": effect, "ci_low": float(low), "ci_high": float(high),
        "p": float(fit.pvalues[name]), "cohen_d": d,
        "cohen_d_ci_low": float(d - d_half), "cohen_d_ci_high": float(d + d_half),
        "n": int(n1), "n_reference": int(n0),
        "mean_gap": float(grp.mean()), "mean_gap_reference": float(ref.mean()),
    }


def _z(level: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(0.5 + level / 2))


def _model_frame(df: pd.DataFrame, group_col: str, covariates: Sequence[str],
                 gap_col: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    if gap_col not in df.columns:
        raise InputError(f"no column {gap_col!r}; bias-correct the predictions first.")
    data = pd.DataFrame({"_gap": pd.to_numeric(df[gap_col], errors="coerce").astype(float),
                         "_group": df[group_col].astype("string")})
    if "age" in df.columns:
        age = pd.to_numeric(df["age"], errors="coerce").astype(float)
        data["age"] = age
        data["age2"] = (age - age.mean()) ** 2
    for c in covariates:
        if c in _CATEGORICAL and c in df.columns:
            data[c] = df[c].astype("string")
    data = data.reset_index(drop=True)
    kept, dropped = [], []
    for c in covariates:
        present = c in data.columns
        if present and data.dropna(subset=["_gap", "_group", c])[c].nunique() > 1:
            kept.append(c)
        else:
            dropped.append(c)
    data = data.dropna(subset=["_gap", "_group", *kept])
    for c in kept:
        if c in _CATEGORICAL:
            data[c] = data[c].astype(str)
    data["_group"] = data["_group"].astype(str)
    return data, kept, dropped


def classify_groups(df: pd.DataFrame, group_col: str = "group", positive: str | None = None,
                    reference: str = "control", features: Sequence[str] = ("corrected_gap",),
                    n_splits: int = 100, test_size: float = 0.3, seed: int = 0,
                    C: float = 10.0, scores: str = "decision") -> dict[str, Any]:  # noqa: N803
    """Separate `positive` from `reference` with an RBF SVM on the gap; AUC from scores.

    The AUC is computed from continuous scores, never from hard labels. Platt-scaled
    probabilities are a monotone function of the SVM's decision function, so both give
    the same AUC; ``scores="decision"`` (default) is six times faster and deterministic,
    ``scores="probability"`` reproduces ``SVC(probability=True)`` literally.

    Args:
        df: One row per subject with `features` and `group_col`.
        group_col: Group column.
        positive: Group to detect (default: the only non-reference group).
        reference: Reference (negative) group.
        features: Feature columns (standardised inside each split).
        n_splits: Stratified shuffle splits.
        test_size: Test fraction of each split.
        seed: Seed of the splits.
        C: SVM regularisation (TSAN: 10).
        scores: ``"decision"`` or ``"probability"``.

    Returns:
        ``{"auc_mean", "auc_sd", "aucs", "n", "n_reference", ...}``.
    """
    from sklearn import config_context
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedShuffleSplit

    x, labels, positive = _xy(df, group_col, positive, reference, features)
    splitter = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    aucs = []
    # Inputs were checked above; skipping sklearn's per-call validation halves the run time.
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for train, test in splitter.split(x, labels):
            model = _svm(C, scores).fit(x[train], labels[train])
            if scores == "probability":
                score = model.predict_proba(x[test])[:, list(model.classes_).index(1)]
            else:
                score = model.decision_function(x[test])  # > 0 favours classes_[1] == 1
            aucs.append(roc_auc_score(labels[test], score))
    return {
        "positive": positive, "reference": reference, "features": list(features),
        "n": int(labels.sum()), "n_reference": int((labels == 0).sum()),
        "n_splits": n_splits, "test_size": test_size, "seed": seed, "C": C, "scores": scores,
        "auc_mean": float(np.mean(aucs)), "auc_sd": float(np.std(aucs, ddof=1)),
        "aucs": [float(a) for a in aucs],
    }


def _svm(c: float, scores: str) -> Any:
    """Standardise + RBF SVM; with Platt-scaled probabilities (``SVC(probability=True)``)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if scores not in ("decision", "probability"):
        raise InputError(f"scores must be 'decision' or 'probability'; got {scores!r}.")
    svc = SVC(kernel="rbf", C=c, class_weight="balanced")
    if scores == "decision":
        return make_pipeline(StandardScaler(), svc)
    return make_pipeline(StandardScaler(),
                         CalibratedClassifierCV(svc, method="sigmoid", ensemble=False))


def _xy(df: pd.DataFrame, group_col: str, positive: str | None, reference: str,
        features: Sequence[str]) -> tuple[np.ndarray, np.ndarray, str]:
    others = _groups(df, group_col, reference)
    if positive is None:
        if len(others) != 1:
            raise InputError(f"several groups besides {reference!r} ({others}); "
                                "choose one with positive=...")
        positive = others[0]
    elif positive not in others:
        raise NotFoundError(f"group {positive!r} not found (groups: {others}).")
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise InputError(f"feature column(s) {missing} not in the table.")
    sub = df[df[group_col].isin([positive, reference])].dropna(subset=list(features))
    labels = (sub[group_col] == positive).to_numpy(dtype=int)
    if min(labels.sum(), (labels == 0).sum()) < 5:
        raise InputError(f"too few subjects to classify {positive!r} vs {reference!r} "
                            f"({labels.sum()} vs {(labels == 0).sum()}; need 5 of each).")
    return sub[list(features)].to_numpy(dtype=float), labels, positive
