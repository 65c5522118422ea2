"""Within-bin interpolation plans: counts per bin, convex ages, seeding, exhausted pairs."""

from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pytest

from brainage.errors import BrainAgeError
from brainage.synthesis import SynthesisPlan, age_bin, plan_synthesis


def _cohort(sizes: dict[int, int]) -> tuple[list[str], list[float]]:
    """``sizes[age]`` subjects with ages spread inside the 1-year bin of ``age``."""
    ids, ages = [], []
    for age, n in sizes.items():
        for k in range(n):
            ids.append(f"sub-{age:02d}{k:02d}")
            ages.append(age - 0.4 + 0.8 * k / max(n - 1, 1))
    return ids, ages


def test_bins_of_sizes_1_2_5_with_cap_4() -> None:
    ids, ages = _cohort({20: 1, 21: 2, 22: 5})
    plan = plan_synthesis(ids, ages, cap=4)
    assert plan.bin_sizes == {20: 1, 21: 2, 22: 5}
    # n = 1: no pair; n = 2: cap - n = 2 wanted but only one pair; n = 5 >= cap: none.
    assert plan.new_per_bin() == {20: 0, 21: 1, 22: 0}
    assert plan.shortfall == {21: 1}
    reused = plan_synthesis(ids, ages, cap=4, reuse_pairs=True)
    assert reused.new_per_bin() == {20: 0, 21: 2, 22: 0} and reused.shortfall == {}
    w = reused.weights
    assert w[0] != w[1]  # the reused pair gets a new weight


def test_cap_minus_n_children_from_distinct_pairs() -> None:
    ids, ages = _cohort({30: 6, 31: 3})
    plan = plan_synthesis(ids, ages, cap=10, seed=1)
    assert plan.new_per_bin() == {30: 4, 31: 3}  # 31: 3 pairs < 7 wanted
    assert plan.shortfall == {31: 4}
    pairs = [frozenset(c.parents) for c in plan.children]
    assert len(set(pairs)) == len(pairs)
    assert all(age_bin(c.age) == c.age_bin for c in plan.children)
    in_bin_31 = {frozenset(p) for p in combinations([i for i in ids if i.startswith("sub-31")], 2)}
    assert {p for p, c in zip(pairs, plan.children, strict=True) if c.age_bin == 31} == in_bin_31


def test_children_are_convex_combinations_of_their_parents() -> None:
    ids, ages = _cohort({40: 8, 41: 4})
    by_id = dict(zip(ids, ages, strict=True))
    plan = plan_synthesis(ids, ages, cap=12, seed=5)
    assert plan.children
    for c in plan.children:
        a_p, a_q = (by_id[p] for p in c.parents)
        assert 0.0 <= c.weight <= 1.0
        assert c.age == pytest.approx(c.weight * a_p + (1 - c.weight) * a_q)
        assert min(a_p, a_q) <= c.age <= max(a_p, a_q)
        assert c.parents[0] != c.parents[1]


def test_same_seed_same_plan_in_any_input_order_other_seed_differs() -> None:
    ids, ages = _cohort({50: 5, 51: 4, 52: 2})
    plan = plan_synthesis(ids, ages, cap=9, seed=7)
    shuffled = np.random.default_rng(0).permutation(len(ids))
    again = plan_synthesis([ids[i] for i in shuffled], [ages[i] for i in shuffled], cap=9, seed=7)
    assert again == plan
    assert plan_synthesis(ids, ages, cap=9, seed=8).children != plan.children


def test_bins_draw_independently() -> None:
    ids, ages = _cohort({60: 4, 61: 4})
    plan = plan_synthesis(ids, ages, cap=8)
    more = plan_synthesis([*ids, "sub-extra"], [*ages, 61.1], cap=8)
    assert [c for c in more.children if c.age_bin == 60] == [
        c for c in plan.children if c.age_bin == 60]


def test_rounding_and_bin_width() -> None:
    assert [age_bin(a) for a in (19.49, 19.5, 20.49, 20.5)] == [19, 20, 20, 21]
    assert age_bin(23.0, width=5.0) == 5 and age_bin(22.4, width=5.0) == 4
    plan = plan_synthesis(["a", "b", "c"], [19.5, 20.4, 20.6], cap=3)
    assert plan.bin_sizes == {20: 2, 21: 1}


def test_plan_round_trips_through_json() -> None:
    ids, ages = _cohort({25: 3, 26: 2})
    plan = plan_synthesis(ids, ages, cap=6, seed=3, reuse_pairs=True)
    data = json.loads(json.dumps(plan.to_dict()))
    assert SynthesisPlan.from_dict(data) == plan
    assert data["children"][0]["id"].startswith("syn-025-")


def test_bad_inputs_are_reported_together() -> None:
    with pytest.raises(BrainAgeError, match="duplicate subject ids \\['a'\\].*non-finite ages"):
        plan_synthesis(["a", "a", "b"], [1.0, 2.0, math.nan])
    with pytest.raises(BrainAgeError, match="2 subjects but 1 ages"):
        plan_synthesis(["a", "b"], [1.0])
    with pytest.raises(BrainAgeError, match="cap must be a positive integer"):
        plan_synthesis(["a", "b"], [1.0, 1.0], cap=0)
    with pytest.raises(BrainAgeError, match="start with the synthetic prefix 'syn-'"):
        plan_synthesis(["syn-1", "b"], [1.0, 1.0])
