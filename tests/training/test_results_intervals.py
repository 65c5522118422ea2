"""Interval calibration at the end of training: held-out fit and an honest coverage check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainage.evaluation.oof import fit_intervals


def _preds(n, sd, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    return pd.DataFrame({"age": age, "predicted_age": age + rng.normal(0, sd, n),
                         "set": "test"})


def test_fit_intervals_reports_held_out_coverage_near_nominal():
    cal, info = fit_intervals(_preds(400, 5.0), "test", method="absolute")
    assert info["fitted_on"] == "test" and info["n_calibration"] == 400
    assert 0.86 <= info["check_coverage"] <= 0.94
    assert info["half_width"] == pytest.approx(1.645 * 5, rel=0.15)
    assert cal.quantile_ == info["half_width"]


def test_fit_intervals_skips_with_a_warning_when_too_few():
    with pytest.warns(UserWarning, match="no predictive intervals"):
        cal, info = fit_intervals(_preds(8, 5.0), "test")
    assert cal is None and info == {}


def _regressed_to_the_mean(n, seed=0):
    """Predictions shrunk towards the mean age: errors largest at both ends of the range."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    pred = 50 + 0.6 * (age - 50) + rng.normal(0, 3, n)
    return pd.DataFrame({"age": age, "predicted_age": pred, "set": "test"})


def test_grouped_calibration_covers_the_ends_of_the_age_range_better_than_one_width():
    preds = _regressed_to_the_mean(600)
    _, pooled = fit_intervals(preds, "test", groups=1, method="absolute")
    _, grouped = fit_intervals(preds, "test", groups=3, method="absolute")
    young, middle, old = pooled["check_coverage_by_age_tertile"]
    assert middle > 0.97 and min(young, old) < 0.85  # one width: wrong at both ends
    by_tertile = grouped["check_coverage_by_age_tertile"]
    assert min(by_tertile) > min(young, old) + 0.02  # the worst-covered ages gain
    assert max(by_tertile) - min(by_tertile) < middle - min(young, old)
    assert 0.86 <= grouped["check_coverage"] <= 0.94 and grouped["groups"] == 3
    widths = grouped["group_half_widths"]
    assert widths[1] < min(widths[0], widths[2])  # narrow in the middle, wide at the ends


def test_default_intervals_are_asymmetric_and_follow_the_shrinkage():
    """The runs' default: each tail calibrated apart per predicted-age group, so the oldest
    predicted reach up (they are mostly older than predicted) and the youngest down."""
    preds = _regressed_to_the_mean(600)
    cal, info = fit_intervals(preds, "test")
    assert info["method"] == "asymmetric" and len(info["group_tails"]) == 3
    (ylo, yhi), _, (olo, ohi) = info["group_tails"]
    assert -ylo > yhi and ohi > -olo
    assert 0.86 <= info["check_coverage"] <= 0.94
    assert min(info["check_coverage_by_age_tertile"]) > 0.8
    _, symmetric = fit_intervals(preds, "test", method="absolute")
    assert min(info["check_coverage_by_age_tertile"]) >= \
        min(symmetric["check_coverage_by_age_tertile"]) - 0.02
