"""OpenBHB probes on small synthetic representations: age decodable, site decodable or not,
the score formulas and the dimension limit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from brainage.errors import BrainAgeError
from brainage.estimators.representation import (
    MAX_FEATURES,
    ProbeNotFittedError,
    check_representation,
)
from brainage.evaluation.probes import (
    AgeProbe,
    ProbeSplit,
    SiteProbe,
    challenge_score,
    openbhb_probes,
    page_text_score,
    ramp_score,
)


def cohort(n: int, sites: list[int], site_strength: float, seed: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Age linear in features 0-3; features 4-7 carry a site offset of `site_strength`."""
    rng = np.random.default_rng(seed)
    site = np.array(sites)[np.arange(n) % len(sites)]
    age = rng.uniform(20, 80, n)
    x = rng.normal(0, 1, (n, 8))
    x[:, 0] = (age - 50) / 10 + 0.02 * rng.normal(size=n)  # age, a little noise
    centres = np.random.default_rng(99).normal(0, 1, (100, 4))  # one centre per site id
    x[:, 4:] += site_strength * centres[site]
    return x, age, site


def splits(site_strength: float) -> tuple[ProbeSplit, ProbeSplit, ProbeSplit]:
    seen, unseen = [0, 1, 2, 3], [10, 11]
    return (ProbeSplit(*cohort(160, seen, site_strength, 0)),
            ProbeSplit(*cohort(60, seen, site_strength, 1)),
            ProbeSplit(*cohort(40, unseen, site_strength, 2)))


def test_decodable_sites_and_age() -> None:
    result = openbhb_probes(*splits(site_strength=4.0))
    assert result.mae_internal < 0.5 and result.mae_external < 0.5  # years, age is linear
    assert result.site_bacc > 0.9
    assert (result.n_sites, result.n_features, result.n_train) == (4, 8, 160)
    assert (result.n_internal, result.n_external) == (60, 40)
    json.dumps(result.to_dict())  # plain numbers
    assert result.to_dict()["score"] == pytest.approx(
        result.site_bacc**0.3 * result.mae_external)


def test_site_free_representation_is_near_chance() -> None:
    result = openbhb_probes(*splits(site_strength=0.0))
    assert result.site_bacc < 0.45  # chance is 0.25 for four sites
    assert result.mae_external < 0.5


def test_score_formulas() -> None:
    assert challenge_score(0.052, 3.564) == pytest.approx(1.468, abs=5e-4)  # leaderboard
    assert challenge_score(0.0510, 3.76) == pytest.approx(1.54, abs=5e-3)  # paper, exp rbf 2
    assert page_text_score(0.052, 3.564, 2.55) == pytest.approx(
        1.4681 + (1 / 64) ** 0.3 * 2.55, abs=1e-3)
    assert ramp_score(0.5, 4.0, 6.4) == pytest.approx(2.0 + 0.1)
    assert ramp_score(0.5, 4.0, 3.0, n_sites=3) == pytest.approx(3.0)


def test_dimension_limit_and_shapes() -> None:
    assert check_representation(np.zeros((2, MAX_FEATURES))).shape == (2, MAX_FEATURES)
    with pytest.raises(BrainAgeError, match="at most 10,000"):
        check_representation(np.zeros((2, MAX_FEATURES + 1)))
    with pytest.raises(BrainAgeError, match=r"\(subjects, features\)"):
        check_representation(np.zeros(5))
    with pytest.raises(BrainAgeError, match="non-finite"):
        check_representation([[1.0, np.nan]])
    train, internal, external = splits(1.0)
    narrow = ProbeSplit(external.x[:, :4], external.age)
    with pytest.raises(BrainAgeError, match="training one has 8"):
        openbhb_probes(train, internal, narrow)
    with pytest.raises(BrainAgeError, match="one value per subject"):
        AgeProbe().fit(train.x, train.age[:-1])


def test_estimator_contract_and_unseen_sites() -> None:
    x, age, site = cohort(80, [0, 1], 4.0, 3)
    with pytest.raises(ProbeNotFittedError, match="fit"):
        AgeProbe().predict(x)
    probe = SiteProbe()
    assert probe.fit(x, site) is probe and list(probe.classes_) == [0, 1]
    assert probe.best_C_ in (0.01, 0.1, 1.0, 10.0, 100.0)
    x_test, _, site_test = cohort(40, [0, 1, 7], 4.0, 4)  # site 7 was never seen
    seen = site_test != 7
    assert probe.balanced_accuracy(x_test, site_test) == pytest.approx(
        probe.balanced_accuracy(x_test[seen], site_test[seen]))
    with pytest.raises(BrainAgeError, match="training site"):
        probe.balanced_accuracy(x_test[~seen], site_test[~seen])
    with pytest.raises(BrainAgeError, match="one site"):
        SiteProbe().fit(x, np.zeros(len(x)))
    assert AgeProbe().fit(x, age).best_alpha_ in (0.01, 0.1, 1.0, 10.0, 100.0)
