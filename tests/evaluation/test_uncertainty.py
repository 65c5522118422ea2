"""Split-conformal intervals: coverage guarantee, normalisation, contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from brainage.errors import BrainAgeError
from brainage.evaluation.uncertainty import ConformalInterval, coverage


def _data(n, rng, hetero=False):
    age = rng.uniform(20, 80, n)
    sd = rng.uniform(1, 8, n) if hetero else np.full(n, 4.0)
    pred = age + rng.normal(0, sd)
    return age, pred, sd


def test_absolute_intervals_reach_nominal_coverage_on_new_subjects():
    rng = np.random.default_rng(0)
    cal = ConformalInterval(alpha=0.1).fit(*_data(2000, rng)[:2])
    age, pred, _ = _data(4000, rng)
    low, high = cal.predict_interval(pred)
    cov = coverage(age, low, high)
    assert 0.875 <= cov["coverage"] <= 0.925
    # Gaussian errors with SD 4: the 90 % half-width is 1.645 * 4.
    assert cov["mean_width"] == pytest.approx(2 * 1.645 * 4, rel=0.1)


def test_normalized_intervals_adapt_to_spread_and_keep_coverage():
    rng = np.random.default_rng(1)
    age, pred, sd = _data(800, rng, hetero=True)
    cal = ConformalInterval(alpha=0.1, method="normalized", eps=0.0).fit(age, pred, spread=sd)
    age2, pred2, sd2 = _data(4000, rng, hetero=True)
    low, high = cal.predict_interval(pred2, spread=sd2)
    assert 0.87 <= coverage(age2, low, high)["coverage"] <= 0.93
    width = high - low
    assert width[sd2 > 6].mean() > 3 * width[sd2 < 2].mean()
    # Per-stratum coverage is closer to nominal than with constant-width intervals.
    lo_a, hi_a = ConformalInterval(alpha=0.1).fit(age, pred).predict_interval(pred2)
    wide = sd2 > 6
    assert coverage(age2[wide], low[wide], high[wide])["coverage"] > coverage(
        age2[wide], lo_a[wide], hi_a[wide])["coverage"]


def test_quantile_is_the_conformal_order_statistic():
    age = np.zeros(19)
    pred = np.arange(1, 20, dtype=float)  # scores 1..19
    cal = ConformalInterval(alpha=0.1, min_subjects=5).fit(age, pred)
    assert cal.quantile_ == 18.0  # ceil(20 * 0.9) = 18th smallest
    assert np.isinf(ConformalInterval(alpha=0.01, min_subjects=5).fit(age, pred).quantile_)


def test_missing_ages_are_ignored_and_round_trip():
    rng = np.random.default_rng(2)
    age, pred, _ = _data(60, rng)
    age[:5] = np.nan
    cal = ConformalInterval().fit(age, pred)
    assert cal.n_calibration_ == 55
    back = ConformalInterval.from_dict(cal.to_dict())
    np.testing.assert_array_equal(back.predict_interval(pred)[0], cal.predict_interval(pred)[0])


def test_contract_and_errors():
    assert clone(ConformalInterval(alpha=0.2)).get_params()["alpha"] == 0.2
    with pytest.raises(NotFittedError, match="not calibrated"):
        ConformalInterval().predict_interval([1.0])
    with pytest.raises(BrainAgeError, match="at least 20"):
        ConformalInterval().fit(np.arange(5.0), np.arange(5.0))
    with pytest.raises(BrainAgeError, match="spread"):
        ConformalInterval(method="normalized").fit(np.arange(30.0), np.arange(30.0))
    with pytest.raises(BrainAgeError, match="alpha"):
        ConformalInterval(alpha=1.5).fit(np.arange(30.0), np.arange(30.0))


def test_grouped_intervals_round_trip_and_use_one_width_per_predicted_age_group():
    from brainage.evaluation.stored import interval_problems

    rng = np.random.default_rng(1)
    age = rng.uniform(20, 80, 90)
    pred = age + rng.normal(0, 1, 90) * np.where(age > 60, 8.0, 1.0)
    cal = ConformalInterval(groups=3).fit(age, pred)
    assert cal.groups_ == 3 and len(cal.edges_) == 2
    lo, hi = cal.predict_interval(np.array([25.0, 75.0]))
    assert (hi - lo)[1] > 3 * (hi - lo)[0]  # the noisy old group gets the wide interval
    data = cal.to_dict()
    assert interval_problems(data) == []
    again = ConformalInterval.from_dict(data)
    np.testing.assert_allclose(again.predict_interval([25.0, 75.0]), (lo, hi))
    assert interval_problems({**data, "group_edges": [70.0, 30.0]})  # unsorted: refused
    few = ConformalInterval(groups=3, min_per_group=15).fit(age[:40], pred[:40])
    assert few.groups_ == 2  # 40 subjects hold two groups of 15, not three


def test_asymmetric_intervals_follow_one_sided_errors():
    """Regression to the mean makes the oldest predicted mostly older than predicted: the
    asymmetric method calibrates each tail apart, per group, and still covers ~90 %."""
    from brainage.evaluation.uncertainty import ConformalInterval

    rng = np.random.default_rng(0)
    age = rng.uniform(20, 80, 4000)
    pred = 50 + 0.7 * (age - 50) + rng.normal(0, 4, age.size)  # shrunk toward the mean
    cal, new = slice(0, 2000), slice(2000, None)
    sym = ConformalInterval(groups=3).fit(age[cal], pred[cal])
    asym = ConformalInterval(groups=3, method="asymmetric").fit(age[cal], pred[cal])
    lo, hi = asym.predict_interval(pred[new])
    inside = (age[new] >= lo) & (age[new] <= hi)
    assert 0.87 < inside.mean() < 0.93
    old = pred[new] > np.quantile(pred[cal], 2 / 3)
    assert (hi - pred[new])[old].mean() > 1.5 * (pred[new] - lo)[old].mean()  # reaches up
    slo, shi = sym.predict_interval(pred[new])
    assert np.mean(hi - lo) <= np.mean(shi - slo) + 0.5  # no wider for it
    back = ConformalInterval.from_dict(asym.to_dict())
    np.testing.assert_allclose(back.predict_interval(pred[new]), (lo, hi))


def test_asymmetric_groups_shrink_until_each_tail_is_finite():
    from brainage.evaluation.uncertainty import ConformalInterval

    rng = np.random.default_rng(1)
    age = rng.uniform(20, 80, 45)
    cal = ConformalInterval(groups=3, method="asymmetric").fit(age, age + rng.normal(0, 3, 45))
    assert cal.groups_ == 2  # 45 subjects hold two groups of >= 19, not three
    assert np.isfinite(np.asarray(cal.tails_)).all()
