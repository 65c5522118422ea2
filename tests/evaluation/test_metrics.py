"""Metrics: hand-checked values, the vectorised bootstrap against explicit resamples."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from brainage.evaluation import metrics as m
from brainage.evaluation.bootstrap import (
    CORE_METRICS,
    bootstrap,
    core_stats,
    iter_weights,
    resample_indices,
    subgroup_mae,
)

AGE = np.array([20.0, 30.0, 40.0, 50.0])
PRED = np.array([22.0, 29.0, 43.0, 48.0])  # gaps 2, -1, 3, -2

HAND = {  # worked out on paper
    "mae": 2.0, "rmse": np.sqrt(4.5), "mean_gap": 0.5, "gap_slope": -40 / 500,
    "r2": 1 - 18 / 500, "pearson_r": 460 / np.sqrt(500 * 437), "spearman_gap_age": -0.4,
}


@pytest.mark.parametrize("name", sorted(HAND))
def test_point_metrics_match_hand_values(name):
    assert getattr(m, name)(AGE, PRED) == pytest.approx(HAND[name])


def test_weighted_stats_at_unit_weights_are_the_point_metrics():
    res = core_stats(np.ones((1, 4)), AGE, PRED)
    assert set(res) == set(CORE_METRICS)
    for name, value in HAND.items():
        assert res[name][0] == pytest.approx(value)


def test_weighted_stats_equal_explicit_resamples_with_ties():
    rng = np.random.default_rng(3)
    age = np.round(rng.uniform(20, 80, 40))  # integer ages: many ties
    pred = np.round(age * 0.8 + 10 + rng.normal(0, 4, 40))
    idx = resample_indices(40, 5, seed=1)
    (w,) = list(iter_weights(idx, np.arange(40)))
    res = core_stats(w, age, pred)
    for b in range(5):
        a, p = age[idx[b]], pred[idx[b]]
        assert res["mae"][b] == pytest.approx(m.mae(a, p))
        assert res["rmse"][b] == pytest.approx(m.rmse(a, p))
        assert res["pearson_r"][b] == pytest.approx(stats.pearsonr(a, p)[0])
        assert res["r2"][b] == pytest.approx(m.r2(a, p))
        assert res["gap_slope"][b] == pytest.approx(m.gap_slope(a, p))
        assert res["spearman_gap_age"][b] == pytest.approx(stats.spearmanr(p - a, a)[0])


def test_cluster_resampling_keeps_sessions_together():
    cluster_of = np.array([0, 0, 1, 2, 2, 2])
    for w in iter_weights(resample_indices(3, 50, seed=0), cluster_of):
        assert np.all(w[:, 0] == w[:, 1]) and np.all(w[:, 3] == w[:, 5])


def test_subgroup_mae():
    w = np.ones((1, 4))
    res = subgroup_mae(w, np.abs(PRED - AGE), np.array([0, 0, 1, -1]), 2)
    assert res[0].tolist() == [1.5, 3.0]


def _sample(n, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    return age, age + 10 - 0.2 * age + rng.normal(0, 4, n)


def test_bootstrap_interval_contains_estimate_and_narrows_with_n():
    widths = []
    for n in (100, 1600):
        age, pred = _sample(n)
        res = bootstrap(lambda w, a=age, p=pred: core_stats(w, a, p), np.arange(n), 500, seed=0)
        for r in res.values():
            assert r["ci_low"] <= r["estimate"] <= r["ci_high"]
        widths.append(res["mae"]["ci_high"] - res["mae"]["ci_low"])
    assert widths[1] < 0.5 * widths[0]  # ~1/sqrt(16) = 0.25 expected


def _table(n=300, seed=0):
    rng = np.random.default_rng(seed)
    age, pred = _sample(n, seed)
    return pd.DataFrame({
        "participant_id": [f"sub-{i:04d}" for i in range(n)], "session": pd.NA,
        "age": age, "predicted_age": pred, "gap": pred - age,
        "site": rng.choice(["A", "B"], n), "set": np.where(np.arange(n) % 3, "internal",
                                                           "external"),
    })


def test_evaluate_predictions_reports_sets_strata_and_both_versions():
    df = _table()
    res = m.evaluate_predictions(df, n_boot=200, seed=0)
    assert res["correction"]["source"] == "crossfit"
    assert "cross-fitted" in res["correction"]["description"]
    assert set(res["sets"]) == {"overall", "internal", "external"}
    overall = res["sets"]["overall"]
    assert overall["n_with_age"] == 300 and overall["n_subjects"] == 300
    for version in ("uncorrected", "corrected"):
        assert set(overall[version]) == set(CORE_METRICS)
    assert overall["uncorrected"]["mae"]["estimate"] == pytest.approx(
        m.mae(df["age"], df["predicted_age"]))
    assert overall["uncorrected"]["gap_slope"]["estimate"] == pytest.approx(-0.2, abs=0.05)
    assert abs(overall["corrected"]["gap_slope"]["estimate"]) < 0.05
    assert [s["site"] for s in overall["per_site"]] == ["A", "B"]
    assert sum(b["n"] for b in overall["age_bins"]) == 300
    json.dumps(res, allow_nan=False)  # valid JSON: no NaN


def test_evaluate_is_deterministic_and_table_is_long():
    df = _table(120)
    a = m.evaluate_predictions(df, n_boot=100, seed=4)
    b = m.evaluate_predictions(df, n_boot=100, seed=4)
    assert a == b
    table = m.metrics_table(a)
    assert list(table.columns) == ["set", "stratum", "correction", "metric", "n", "estimate",
                                   "ci_low", "ci_high"]
    assert set(table["correction"]) == {"uncorrected", "corrected"}
    one = table[(table.set == "overall") & (table.stratum == "all") & (table.metric == "mae")]
    assert len(one) == 2


def test_no_bootstrap_and_no_correction():
    res = m.evaluate_predictions(_table(50), correction="none", n_boot=0)
    overall = res["sets"]["overall"]
    assert "corrected" not in overall
    assert overall["uncorrected"]["mae"]["ci_low"] is None


def test_table_correction_is_used_when_present():
    df = _table(60)
    df["corrected_age"] = df["age"] + 1.0
    res = m.evaluate_predictions(df, n_boot=0)
    assert res["correction"]["source"] == "table"
    assert res["sets"]["overall"]["corrected"]["mean_gap"]["estimate"] == pytest.approx(1.0)


def test_too_small_to_crossfit_falls_back_to_uncorrected():
    res = m.evaluate_predictions(_table(20), n_boot=0)  # 16 per training part
    assert res["correction"]["source"] == "none"
    assert "min_subjects" in res["correction"]["description"]


def test_default_age_bins_are_decades():
    assert m.default_age_bins([23.0, 61.5]) == [20.0, 30.0, 40.0, 50.0, 60.0, 70.0]


def test_ages_without_variance_leave_r_undefined_with_the_reason():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"participant_id": [f"s{i}" for i in range(40)], "age": 50.0,
                       "predicted_age": 50 + rng.normal(0, 4, 40)})
    result = m.evaluate_predictions(df, n_boot=200)
    s = result["sets"]["overall"]
    r = s["uncorrected"]["pearson_r"]
    assert (r["estimate"], r["ci_low"], r["ci_high"]) == (None, None, None)  # was 1 [-1, 1]
    assert s["undefined"]["pearson_r"] == "every age is 50 (no variance)"
    assert s["uncorrected"]["mae"]["estimate"] > 0  # what is defined is still reported
    assert result["correction"]["source"] == "none"  # no correction fitted on nothing
    assert "every age is 50" in result["correction"]["description"]
