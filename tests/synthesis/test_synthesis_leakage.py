"""The leakage rule: a child trains only where both parents train, and never evaluates."""

from __future__ import annotations

import pytest

from brainage.data.splits_file import Splits
from brainage.errors import BrainAgeError, ValidationError
from brainage.synthesis import (
    SyntheticChild,
    check_synthetic_placement,
    children_per_fold,
    fold_roles,
    plan_synthesis,
)

CHILDREN = [
    SyntheticChild("syn-020-0000", ("a", "b"), 0.5, 20.0, 20),
    SyntheticChild("syn-020-0001", ("a", "c"), 0.2, 20.1, 20),
    SyntheticChild("syn-020-0002", ("c", "d"), 0.9, 19.9, 20),
]
FOLDS = [
    {"train": ["a", "b", "c"], "val": ["d"], "test": ["e"]},
    {"train": ["a", "b", "d"], "val": [], "test": ["c", "e"]},
    {"train": ["c", "d", "e"], "test": ["a", "b"]},
]


def _ids(per_fold: list[list[SyntheticChild]]) -> list[list[str]]:
    return [[c.child_id for c in fold] for fold in per_fold]


def test_children_per_fold_keeps_only_children_of_two_training_parents() -> None:
    assert _ids(children_per_fold(FOLDS, CHILDREN)) == [
        ["syn-020-0000", "syn-020-0001"],  # (c, d): d validates in fold 0
        ["syn-020-0000"],
        ["syn-020-0002"],
    ]


def test_accepts_a_splits_object_and_a_plan() -> None:
    splits = Splits(method="user", seed=None, params={}, folds=FOLDS)
    plan = plan_synthesis(["a", "b", "c", "d", "e"], [20.0, 20.2, 19.8, 20.1, 40.0], cap=10)
    per_fold = children_per_fold(splits, plan)
    assert len(per_fold) == 3
    for fold, kids in zip(fold_roles(splits), per_fold, strict=True):
        assert all(set(c.parents) <= fold["train"] for c in kids)
    # fold 2 trains c, d, e: of bin 20's pairs only (c, d) qualifies
    assert [c.parents for c in per_fold[2]] == [("c", "d")]


def test_validator_accepts_children_chosen_by_the_rule() -> None:
    folds = [dict(f) for f in FOLDS]
    for fold, kids in zip(folds, children_per_fold(FOLDS, CHILDREN), strict=True):
        fold["train"] = [*fold["train"], *(c.child_id for c in kids)]
    check_synthetic_placement(folds, CHILDREN)  # no error


def test_validator_refuses_synthetic_subjects_in_validation_or_test() -> None:
    folds = [{"train": ["a", "b", "c"], "val": ["d", "syn-020-0000"], "test": ["syn-020-0001"]}]
    with pytest.raises(ValidationError) as err:
        check_synthetic_placement(folds, CHILDREN)
    msg = str(err.value)
    assert isinstance(err.value, BrainAgeError)
    assert "2 problem(s) in the placement of synthetic subjects" in msg
    assert "fold 0, role 'val': got 'syn-020-0000'; expected synthetic subjects in the " \
           "'train' role only" in msg
    assert "role 'test': got 'syn-020-0001'" in msg
    assert "Fix: evaluate on real scans only" in msg


def test_validator_refuses_a_child_whose_parent_is_held_out() -> None:
    folds = [{"train": ["a", "b", "c", "syn-020-0002"], "val": ["d"]}]
    with pytest.raises(ValidationError, match=r"syn-020-0002.*not \['d'\].*children_per_fold"):
        check_synthetic_placement(folds, CHILDREN)


def test_bad_splits_are_explained() -> None:
    with pytest.raises(BrainAgeError, match="splits must be a Splits object or a list"):
        children_per_fold({"train": ["a"]}, CHILDREN)
