"""Bias correction: each method on data with a known bias, the estimator contract, storage."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from brainage.errors import BrainAgeError
from brainage.evaluation.bias import (
    BiasCorrector,
    CorrectionNotFittedError,
    SameSubjectsWarning,
)
from brainage.evaluation.crossfit import apply_to_table, crossfit_correct, fit_on_table

ALPHA, BETA = -0.3, 15.0  # known bias: gap = ALPHA * age + BETA + noise


def _data(n=2000, seed=0, noise=2.0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    return age, age + ALPHA * age + BETA + rng.normal(0, noise, n)


def _slope(age, gap):
    return np.polyfit(age, gap, 1)[0]


@pytest.mark.parametrize("method", ["beheshti", "cole", "smith"])
def test_each_method_removes_the_age_bias_on_new_subjects(method):
    val_age, val_pred = _data(seed=0)
    test_age, test_pred = _data(seed=1)
    bc = BiasCorrector(method=method).fit(val_age, val_pred)
    assert abs(_slope(test_age, test_pred - test_age) - ALPHA) < 0.02  # biased before
    assert abs(_slope(test_age, bc.corrected_gap(test_age, test_pred))) < 0.02


def test_known_coefficients_are_recovered():
    age, pred = _data()
    beh = BiasCorrector("beheshti").fit(age, pred)
    assert beh.slope_ == pytest.approx(ALPHA, abs=0.01)
    assert beh.intercept_ == pytest.approx(BETA, abs=0.5)
    cole = BiasCorrector("cole").fit(age, pred)  # predicted = (1 + ALPHA) * age + BETA
    assert cole.slope_ == pytest.approx(1 + ALPHA, abs=0.01)
    assert cole.intercept_ == pytest.approx(BETA, abs=0.5)


def test_cole_and_beheshti_differ_as_expected():
    age, pred = _data(noise=4.0)
    beh = BiasCorrector("beheshti").fit(age, pred)
    cole = BiasCorrector("cole").fit(age, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SameSubjectsWarning)
        g_beh, g_cole = beh.corrected_gap(age, pred), cole.corrected_gap(age, pred)
    # Same residual, but Cole rescales it by 1/a (a < 1 here), so its gaps are wider.
    np.testing.assert_allclose(g_cole, g_beh / cole.slope_, atol=1e-8)
    assert np.abs(g_cole).mean() > np.abs(g_beh).mean() * 1.3


def test_smith_quadratic_with_confound():
    rng = np.random.default_rng(2)
    n = 3000
    age = rng.uniform(20, 80, n)
    sex = rng.choice(["F", "M"], n)
    gap = 5 - 0.2 * age + 0.002 * age**2 + 1.5 * (sex == "M") + rng.normal(0, 1, n)
    conf = pd.DataFrame({"sex": sex})
    bc = BiasCorrector("smith", degree=2, confounds=("sex",)).fit(age, age + gap, conf)
    coef = bc.models_["__pooled__"]["coef"]
    assert coef["age"] == pytest.approx(-0.2, abs=0.02)
    assert coef["age^2"] == pytest.approx(0.002, abs=3e-4)
    assert coef["sex[M]"] == pytest.approx(1.5, abs=0.1)
    new_age = rng.uniform(20, 80, n)
    new_sex = rng.choice(["F", "M"], n)
    new_gap = 5 - 0.2 * new_age + 0.002 * new_age**2 + 1.5 * (new_sex == "M")
    out = bc.corrected_gap(new_age, new_age + new_gap, confounds_df=pd.DataFrame({"sex": new_sex}))
    np.testing.assert_allclose(out, 0, atol=0.3)


def test_sklearn_contract():
    bc = BiasCorrector(method="smith", degree=2, per_site=True, min_subjects=30)
    params = bc.get_params()
    assert params == {"method": "smith", "degree": 2, "confounds": (), "per_site": True,
                      "min_subjects": 30, "site_fallback": "pooled"}
    twin = clone(bc)
    assert twin.get_params() == params and twin is not bc
    assert bc.set_params(degree=3).degree == 3
    age, pred = _data(200)
    plain = BiasCorrector()
    assert plain.fit(age, pred) is plain
    assert not hasattr(clone(plain), "models_")  # clone drops fitted state
    assert all(k.endswith("_") for k in vars(plain) if k not in params)


def test_unfitted_use_raises_a_clear_not_fitted_error():
    with pytest.raises(NotFittedError, match="not fitted") as info:
        BiasCorrector().transform([30.0], [35.0])
    assert isinstance(info.value, CorrectionNotFittedError)
    assert isinstance(info.value, BrainAgeError)
    with pytest.raises(NotFittedError, match="BiasCorrector is not fitted yet"):
        BiasCorrector().to_dict()


def test_refuses_too_few_subjects():
    age, pred = _data(19)
    with pytest.raises(BrainAgeError, match=r"19 subject.*at least 20"):
        BiasCorrector().fit(age, pred)
    age, pred = _data(30)
    ids = [f"sub-{i % 10}" for i in range(30)]  # 30 scans of only 10 subjects
    with pytest.raises(BrainAgeError, match="10 subject"):
        BiasCorrector().fit(age, pred, subject_ids=ids)


def test_invalid_parameters_and_inputs():
    age, pred = _data(50)
    with pytest.raises(BrainAgeError, match="unknown"):
        BiasCorrector(method="magic").fit(age, pred)
    with pytest.raises(BrainAgeError, match="smith"):
        BiasCorrector(method="beheshti", degree=2).fit(age, pred)
    with pytest.raises(BrainAgeError, match="missing"):
        BiasCorrector().fit(np.r_[age[:-1], np.nan], pred)
    with pytest.raises(BrainAgeError, match="Cole"):
        BiasCorrector("cole").fit(age, np.full_like(age, 50.0) + np.sin(age))
    bc = BiasCorrector().fit(age, pred)
    assert np.isnan(bc.transform([np.nan, 40.0], [50.0, 41.0])[0])


def test_warns_when_correcting_the_fitting_subjects():
    age, pred = _data(100)
    ids = [f"sub-{i:03d}" for i in range(100)]
    bc = BiasCorrector().fit(age[:60], pred[:60], subject_ids=ids[:60])
    with pytest.warns(SameSubjectsWarning, match="60 of the 60"):
        bc.transform(age[:60], pred[:60], subject_ids=ids[:60])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bc.transform(age[60:], pred[60:], subject_ids=ids[60:])  # held out: silent
    anon = BiasCorrector().fit(age, pred)
    with pytest.warns(SameSubjectsWarning, match="exactly the data"):
        anon.transform(age, pred)


def _two_sites(n=400, seed=0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(20, 80, n)
    site = np.where(np.arange(n) % 2, "A", "B")
    slope = np.where(site == "A", -0.1, -0.4)
    return age, age + slope * age + 10 + rng.normal(0, 1, n), site


def test_per_site_corrections_fit_each_site():
    age, pred, site = _two_sites()
    bc = BiasCorrector(per_site=True).fit(age, pred, site=site)
    assert bc.models_["A"]["coef"]["age"] == pytest.approx(-0.1, abs=0.02)
    assert bc.models_["B"]["coef"]["age"] == pytest.approx(-0.4, abs=0.02)
    t_age, t_pred, t_site = _two_sites(seed=1)
    gap = bc.corrected_gap(t_age, t_pred, site=t_site)
    for s in ("A", "B"):
        assert abs(_slope(t_age[t_site == s], gap[t_site == s])) < 0.02
    with pytest.warns(UserWarning, match="pooled"):
        bc.transform([40.0], [40.0], site=["C"])  # unseen site


def test_per_site_fallback_and_refusal():
    age, pred, site = _two_sites(60)
    site = np.where(np.arange(60) < 50, "A", "B")  # B has 10 subjects
    with pytest.warns(UserWarning, match="'B' has 10"):
        bc = BiasCorrector(per_site=True).fit(age, pred, site=site)
    assert bc.fallback_sites_ == ["B"] and "B" not in bc.models_
    with pytest.raises(BrainAgeError, match="site 'B'"):
        BiasCorrector(per_site=True, site_fallback="refuse").fit(age, pred, site=site)
    with pytest.raises(BrainAgeError, match="site"):
        BiasCorrector(per_site=True).fit(age, pred)


def test_json_round_trip(tmp_path):
    age, pred, site = _two_sites()
    bc = BiasCorrector("smith", degree=2, per_site=True).fit(age, pred, site=site)
    back = BiasCorrector.from_dict(json.loads(json.dumps(bc.to_dict())))
    assert back.get_params() == bc.get_params()
    t_age, t_pred, t_site = _two_sites(seed=5)
    np.testing.assert_array_equal(back.transform(t_age, t_pred, site=t_site),
                                  bc.transform(t_age, t_pred, site=t_site))
    path = bc.save(tmp_path)  # a run folder
    assert path.name == "bias_correction.json"
    assert BiasCorrector.load(tmp_path).formula() == bc.formula()
    with pytest.raises(BrainAgeError, match="not found"):
        BiasCorrector.load(tmp_path / "nope")


def _table(n=200, seed=0):
    age, pred = _data(n, seed)
    return pd.DataFrame({"participant_id": [f"sub-{i:03d}" for i in range(n)],
                         "age": age, "predicted_age": pred})


def test_crossfit_never_uses_a_subjects_own_fold():
    df = _table()
    out = crossfit_correct(df, k=5, seed=0)
    folds = out["crossfit_fold"].to_numpy()
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    for f in range(5):
        train, test = df[folds != f], df[folds == f]
        ref = BiasCorrector().fit(train["age"], train["predicted_age"])
        np.testing.assert_allclose(out.loc[folds == f, "corrected_age"],
                                   ref.transform(test["age"], test["predicted_age"]))
    # A subject's own prediction never enters the model that corrects it.
    bumped = df.copy()
    bumped.loc[7, "predicted_age"] += 100.0
    again = crossfit_correct(bumped, k=5, seed=0)
    assert again.loc[7, "corrected_age"] - out.loc[7, "corrected_age"] == pytest.approx(100.0)


def test_table_helpers_fit_on_controls_and_apply():
    df = _table()
    df["group"] = np.where(np.arange(200) < 100, "control", "patient")
    bc = fit_on_table(df, BiasCorrector(), df["group"] == "control")
    assert bc.n_subjects_ == 100
    with pytest.warns(SameSubjectsWarning, match="100 of the 200"):
        out = apply_to_table(df, bc)
    np.testing.assert_allclose(out["corrected_gap"], out["corrected_age"] - out["age"])


def test_fitting_on_ages_without_variance_is_refused():
    rng = np.random.default_rng(1)
    with pytest.raises(BrainAgeError, match="every age is 50"):
        BiasCorrector().fit(np.full(30, 50.0), 50 + rng.normal(0, 3, 30))
