"""Longitudinal rate of change of the gap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainage.evaluation.longitudinal import (
    baseline_rows,
    gap_change_rates,
    has_repeated_sessions,
    summarise_rates,
)


def _longitudinal(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(40):
        rate = 0.5 if s % 2 else 0.0  # patients gain half a year of brain age per year
        a0, g0 = rng.uniform(50, 70), rng.normal(0, 3)
        for k in range(1 + s % 3):  # 1, 2 or 3 sessions
            age = a0 + 1.7 * k
            gap = g0 + rate * (age - a0) + rng.normal(0, 0.01)
            rows.append({"participant_id": f"sub-{s:02d}", "session": f"ses-{k}", "age": age,
                         "gap": gap, "corrected_gap": gap - 0.1 * age,
                         "group": "patient" if s % 2 else "control"})
    return pd.DataFrame(rows).sample(frac=1, random_state=1)  # order must not matter


def test_rates_are_recovered_per_subject():
    rates = gap_change_rates(_longitudinal())
    assert (rates["n_sessions"] >= 2).all()
    assert len(rates) == 40 - 14  # subjects 0, 3, ..., 39 have a single session
    expected = np.where(rates["group"] == "patient", 0.5, 0.0)
    np.testing.assert_allclose(rates["gap_rate"], expected, atol=0.05)
    np.testing.assert_allclose(rates["corrected_gap_rate"], rates["gap_rate"] - 0.1, atol=1e-9)
    assert rates["follow_up_years"].min() == pytest.approx(1.7)


def test_summary_per_group():
    summary = summarise_rates(gap_change_rates(_longitudinal()))
    per = summary["gap_rate"]["per_group"]
    assert per["patient"]["ci_low"] < 0.5 < per["patient"]["ci_high"]
    assert abs(per["control"]["mean"]) < 0.05
    assert summary["n_subjects"] == 26


def test_baseline_rows_and_detection():
    df = _longitudinal()
    base = baseline_rows(df)
    assert base["participant_id"].is_unique and len(base) == 40
    assert (base["session"] == "ses-0").all()
    assert has_repeated_sessions(df)
    assert not has_repeated_sessions(base)


def test_same_age_sessions_are_skipped():
    df = pd.DataFrame({"participant_id": ["a", "a"], "session": ["1", "2"], "age": [50.0, 50.0],
                       "gap": [1.0, 2.0]})
    assert gap_change_rates(df).empty
