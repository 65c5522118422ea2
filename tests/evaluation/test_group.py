"""Group analysis: known effects recovered, covariates handled, SVM AUC sanity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainage.errors import BrainAgeError
from brainage.evaluation.group import classify_groups, group_difference

EFFECT = 3.0


def _cohort(n=600, seed=0, effect=EFFECT):
    """Gap with a known group effect plus age, age², sex and site confounds.

    Patients are older on average, so an unadjusted comparison is confounded by age.
    """
    rng = np.random.default_rng(seed)
    patient = rng.random(n) < 0.4
    age = np.where(patient, rng.uniform(55, 85, n), rng.uniform(40, 80, n))
    sex = rng.choice(["F", "M"], n)
    site = rng.choice(["A", "B", "C"], n)
    gap = (effect * patient + 0.1 * (age - 60) + 0.004 * (age - 60) ** 2 + 1.0 * (sex == "M")
           + np.select([site == "A", site == "B"], [-2.0, 1.5], 0.0) + rng.normal(0, 2.5, n))
    return pd.DataFrame({"participant_id": [f"sub-{i:04d}" for i in range(n)], "age": age,
                         "sex": sex, "site": site,
                         "group": np.where(patient, "patient", "control"),
                         "corrected_gap": gap})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_group_effect_is_recovered_within_its_interval(seed):
    res = group_difference(_cohort(seed=seed))
    c = res["comparisons"]["patient"]
    assert c["ci_low"] < EFFECT < c["ci_high"]
    assert c["p"] < 1e-6 and c["cohen_d"] > 0.8
    assert c["cohen_d_ci_low"] < c["cohen_d"] < c["cohen_d_ci_high"]
    assert res["covariates"] == ["age", "age2", "sex", "site"]
    assert c["n"] + c["n_reference"] == res["n"] == 600


def test_unadjusted_difference_is_confounded_but_adjusted_is_not():
    df = _cohort()
    c = group_difference(df, covariates=())["comparisons"]["patient"]
    assert not c["ci_low"] < EFFECT < c["ci_high"]  # age confounding inflates it
    assert c["mean_gap"] - c["mean_gap_reference"] == pytest.approx(c["effect"])


def test_constant_covariates_are_dropped():
    df = _cohort().assign(site="A")
    res = group_difference(df)
    assert res["dropped_covariates"] == ["site"]
    assert res["covariates"] == ["age", "age2", "sex"]


def test_several_groups_and_bad_reference():
    df = _cohort()
    mci = df.index[:150]
    was_patient = (df.loc[mci, "group"] == "patient").to_numpy()
    df.loc[mci, "corrected_gap"] += 1.5 - EFFECT * was_patient  # mci effect: +1.5 y
    df.loc[mci, "group"] = "mci"
    res = group_difference(df)
    assert set(res["comparisons"]) == {"mci", "patient"}
    assert res["comparisons"]["mci"]["ci_low"] < 1.5 < res["comparisons"]["mci"]["ci_high"]
    assert res["comparisons"]["patient"]["ci_low"] < EFFECT < res["comparisons"]["patient"][
        "ci_high"]
    with pytest.raises(BrainAgeError, match="reference group 'HC' not found"):
        group_difference(df, reference="HC")
    with pytest.raises(BrainAgeError, match="several groups"):
        classify_groups(df, n_splits=2)


def test_svm_auc_high_on_separable_and_chance_on_random_labels():
    df = _cohort(400, effect=8.0)
    sep = classify_groups(df, n_splits=10, seed=0)
    assert sep["auc_mean"] > 0.8 and len(sep["aucs"]) == 10
    rng = np.random.default_rng(5)
    shuffled = df.assign(group=rng.permutation(df["group"].to_numpy()))
    rand = classify_groups(shuffled, n_splits=10, seed=0)
    assert abs(rand["auc_mean"] - 0.5) < 0.1


def test_probability_scores_give_the_same_auc_as_the_decision_function():
    df = _cohort(200, effect=4.0)
    a = classify_groups(df, n_splits=3, scores="decision")
    b = classify_groups(df, n_splits=3, scores="probability")
    assert a["aucs"] == pytest.approx(b["aucs"])


def test_classification_needs_enough_subjects():
    df = _cohort(40)
    df = pd.concat([df[df.group == "control"], df[df.group == "patient"].head(3)])
    with pytest.raises(BrainAgeError, match="too few"):
        classify_groups(df, n_splits=2)
