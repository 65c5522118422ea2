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
    cal, info = fit_intervals(_preds(400, 5.0), "test")
    assert info["fitted_on"] == "test" and info["n_calibration"] == 400
    assert 0.86 <= info["check_coverage"] <= 0.94
    assert info["half_width"] == pytest.approx(1.645 * 5, rel=0.15)
    assert cal.quantile_ == info["half_width"]


def test_fit_intervals_skips_with_a_warning_when_too_few():
    with pytest.warns(UserWarning, match="no predictive intervals"):
        cal, info = fit_intervals(_preds(8, 5.0), "test")
    assert cal is None and info == {}
