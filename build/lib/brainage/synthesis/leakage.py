"""The leakage rule for synthetic subjects: they train, they never evaluate.

A synthetic child is an interpolation of two real subjects, so it carries both parents'
anatomy. In a fold it may be used only when *both* parents are training subjects of that
fold (a parent in validation or test would leak into training through its child), and it
may never be evaluated on: validation and test sets hold real scans only.

:func:`children_per_fold` applies the rule; :func:`check_synthetic_placement` refuses
splits that break it. (The generator that encodes and decodes must itself be trained on
the fold's training subjects only; that is the training module's job.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from brainage.errors import InputError, Problem, ValidationError
from brainage.synthesis.plan import SynthesisPlan, SyntheticChild

#: The only role a synthetic subject may have.
TRAIN_ROLE = "train"

def fold_roles(splits: Any) -> list[dict[str, set[str]]]:
    """Folds as ``[{role: {subject ids}}]`` from a :class:`~brainage.data.splits.Splits` or a
    plain list of ``{role: [ids]}`` dicts (the ``folds`` of ``splits.json``).

    Raises:
        BrainAgeError: ``splits`` is neither.
    """
    folds = getattr(splits, "folds", splits)
    if isinstance(folds, Mapping) or not isinstance(folds, Sequence) or not all(
            isinstance(f, Mapping) for f in folds):
        raise InputError(
            f"splits must be a Splits object or a list of {{role: [subject ids]}} folds, got "
            f"{type(splits).__name__}. Fix: pass Splits.from_json(path) or its .folds."
        )
    return [{str(role): {str(s) for s in ids} for role, ids in fold.items()} for fold in folds]


def _children(children: SynthesisPlan | Iterable[SyntheticChild]) -> list[SyntheticChild]:
    return list(children.children if isinstance(children, SynthesisPlan) else children)


def children_per_fold(splits: Any, children: SynthesisPlan | Iterable[SyntheticChild]
                      ) -> list[list[SyntheticChild]]:
    """For each fold, the children whose two parents are both training subjects of it.

    Args:
        splits: A Splits object or a list of ``{role: [ids]}`` folds.
        children: A plan or its children.

    Returns:
        One list per fold, in plan order.
    """
    kids = _children(children)
    out = []
    for fold in fold_roles(splits):
        train = fold.get(TRAIN_ROLE, set())
        out.append([c for c in kids if set(c.parents) <= train])
    return out


def check_synthetic_placement(splits: Any,
                              children: SynthesisPlan | Iterable[SyntheticChild]) -> None:
    """Refuse splits that evaluate on synthetic subjects or train on a leaking child.

    Every problem is reported at once: a child in any role but ``train``, and a child in a
    fold's ``train`` while one of its parents is not a training subject of that fold.

    Raises:
        ValidationError: (a BrainAgeError) listing each misplaced child with fold and role.
    """
    kids = {c.child_id: c for c in _children(children)}
    found: list[Problem | None] = []
    for i, fold in enumerate(fold_roles(splits)):
        train = fold.get(TRAIN_ROLE, set())
        for role, ids in sorted(fold.items()):
            found += [_problem(i, role, kids[cid], train) for cid in sorted(ids & kids.keys())]
    problems = [p for p in found if p is not None]
    if problems:
        raise ValidationError(problems, "the placement of synthetic subjects")


def _problem(fold: int, role: str, child: SyntheticChild, train: set[str]) -> Problem | None:
    where = f"fold {fold}, role '{role}'"
    if role != TRAIN_ROLE:
        return Problem(where, value=child.child_id,
                       expected="synthetic subjects in the 'train' role only",
                       fix="evaluate on real scans only; add synthetic subjects to training "
                           "with children_per_fold")
    outside = [p for p in child.parents if p not in train]
    if not outside:
        return None
    return Problem(where, value=child.child_id,
                   expected=f"both parents {list(child.parents)} among the fold's training "
                            f"subjects (not {outside})",
                   fix="choose each fold's synthetic subjects with children_per_fold")
