"""Nested model selection: inner folds choose, outer folds score, nothing leaks."""

from __future__ import annotations

import numpy as np
import pytest

from brainage.errors import BrainAgeError
from brainage.selection import bootstrap_mae, nested, select, stratified_folds


def ridge_candidate(X: np.ndarray, y: np.ndarray):
    """Least squares with a small ridge on columns of X."""
    def fit_predict(train, test):
        A = np.column_stack([X[train], np.ones(len(train))])
        w = np.linalg.solve(A.T @ A + 1e-3 * np.eye(A.shape[1]), A.T @ y[train])
        return np.column_stack([X[test], np.ones(len(test))]) @ w
    return fit_predict


@pytest.fixture
def cohort():
    rng = np.random.default_rng(0)
    n = 120
    y = rng.uniform(20, 80, n)
    honest = (y + rng.normal(0, 8, n))[:, None]  # a real but noisy signal (MAE about 6)
    return rng, y, honest


def test_folds_partition_the_index_and_span_the_range(cohort):
    _rng, y, _ = cohort
    index = np.arange(10, 110)
    folds = stratified_folds(y, index, 5, seed=3)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == index.tolist()
    for train, test in folds:
        assert not np.intersect1d(train, test).size
        assert len(test) == 20
        assert y[test].min() < 35 and y[test].max() > 65  # every fold spans the ages


def test_groups_keep_a_subjects_scans_on_one_side(cohort):
    _rng, y, _ = cohort
    groups = np.repeat(np.arange(60), 2)  # two scans per subject
    for train, test in stratified_folds(y, np.arange(120), 4, seed=0, groups=groups):
        assert not set(groups[train]) & set(groups[test])


def test_too_few_subjects_is_a_clear_error(cohort):
    _rng, y, _ = cohort
    with pytest.raises(BrainAgeError, match="5 folds of 3 subjects"):
        stratified_folds(y, np.arange(3), 5, seed=0)


def leaky_setup(rng, y, honest, test):
    """A feature that carries the age only on one outer fold's test subjects (noise
    elsewhere): a selection that looks at that fold would pick it and score near zero."""
    leak = rng.normal(50, 17, len(y))
    leak[test] = y[test]
    return {"honest": ridge_candidate(honest, y), "leaky": ridge_candidate(
        np.column_stack([leak, np.ones(len(y))]), y)}


def test_nested_selection_cannot_see_the_outer_fold(cohort):
    rng, y, honest = cohort
    for train, test in stratified_folds(y, np.arange(len(y)), 5, seed=0):
        cands = leaky_setup(rng, y, honest, test)
        res = nested(cands, y, [(train, test)], inner_folds=5, seed=1)
        assert res.chosen == ["honest"]  # inner folds see the leak as noise
        assert res.mae(y) == pytest.approx(res.mae(y, "honest"))
        assert res.mae(y) > 4.0  # the honest signal's error, not the leak's zero


def test_a_selection_that_peeks_at_the_outer_fold_fails_the_check(cohort):
    """The check above can fail: choosing on the outer test subjects picks the leak, which
    then scores as if it were perfect."""
    rng, y, honest = cohort
    for _train, test in stratified_folds(y, np.arange(len(y)), 5, seed=0):
        cands = leaky_setup(rng, y, honest, test)
        assert select(cands, y, test, folds=2, seed=0)[0] == "leaky"
        assert np.abs(cands["leaky"](test, test) - y[test]).max() < 1e-3


def test_select_breaks_ties_by_order_and_reports_every_score(cohort):
    _rng, y, honest = cohort
    c = ridge_candidate(honest, y)
    best, scores = select({"first": c, "second": c}, y, np.arange(len(y)))
    assert best == "first" and scores["first"] == scores["second"]


def test_outer_folds_that_overlap_are_refused(cohort):
    _rng, y, honest = cohort
    idx = np.arange(len(y))
    with pytest.raises(BrainAgeError, match="share subjects"):
        nested({"a": ridge_candidate(honest, y)}, y, [(idx[:80], idx[70:])])


def test_bootstrap_interval_contains_the_mae(cohort):
    rng, y, _ = cohort
    pred = y + rng.normal(0, 5, len(y))
    mae, lo, hi = bootstrap_mae(y, pred, n=500)
    assert lo < mae < hi
    assert mae == pytest.approx(np.mean(np.abs(pred - y)))
