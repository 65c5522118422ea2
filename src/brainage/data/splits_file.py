"""The splits file: which subjects train, validate and test, written once as ``splits.json``.

A :class:`Splits` lists *subjects* (``participant_id``), never scans, so every session of
a subject sits in the same role. It remembers a hash of the cohort's sorted subject ids:
a file made for another cohort (or for this cohort before subjects were added or
removed) is refused instead of silently leaking or dropping subjects.

File layout (``folds`` is the only key a hand-written file needs)::

    {"format": "brainage-splits", "version": 1, "method": "kfold", "seed": 0,
     "params": {"k": 5}, "cohort_hash": "sha256:...", "n_subjects": 120,
     "unlabelled": ["sub-77"],
     "folds": [{"train": ["sub-01", ...], "val": [...], "test": [...]}, ...]}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from brainage.data.cohort import Cohort
from brainage.errors import BrainAgeError, Problem, ValidationError
from brainage.io import parse_json_file, write_json

FORMAT = "brainage-splits"
VERSION = 1
#: Roles a fold may have. ``test`` is the held-out test (external for leave-sites-out);
#: ``internal_test`` / ``external_test`` come from OpenBHB's seen / unseen sites.
ROLES: tuple[str, ...] = ("train", "val", "test", "internal_test", "external_test")
#: Roles whose subjects need an age (they are fitted on).
FIT_ROLES: tuple[str, ...] = ("train", "val")
_SHOW = 10  # ids shown in an error before "... and N more"
#: ``group`` of synthetic subjects (``brainage gan synthesize``): they may only ever train.
SYNTHETIC_GROUP = "synthetic"


def synthetic_subjects(cohort: Cohort) -> set[str]:
    """Subjects of `cohort` whose ``group`` is ``synthetic``."""
    t = cohort.table
    return set(t.loc[(t["group"] == SYNTHETIC_GROUP).fillna(False).to_numpy(bool),
                     "participant_id"])


def cohort_hash(subjects: Iterable[str]) -> str:
    """``"sha256:<hex>"`` of the sorted unique subject ids, one per line."""
    text = "\n".join(sorted(set(subjects)))
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _show(ids: Iterable[str]) -> str:
    ids = sorted(ids)
    more = f" ... and {len(ids) - _SHOW} more" if len(ids) > _SHOW else ""
    return ", ".join(ids[:_SHOW]) + more


@dataclass
class Splits:
    """Subject-level splits of one cohort.

    Attributes:
        method: How they were made (``kfold``, ``holdout``, ``sites``, ``openbhb``, ``user``).
        seed: Random seed used, or None.
        params: The method's parameters, for the record.
        folds: One dict per fold mapping role (see ROLES) to sorted subject ids.
        cohort_hash: :func:`cohort_hash` of the cohort's subjects, or None (hand-written file).
        unlabelled: Subjects without any age: in no role; they can be predicted only.
        n_subjects: Number of subjects in the cohort the splits were made for.
    """

    method: str
    seed: int | None
    params: dict[str, Any]
    folds: list[dict[str, list[str]]]
    cohort_hash: str | None = None
    unlabelled: list[str] = field(default_factory=list)
    n_subjects: int | None = None

    def __post_init__(self) -> None:
        self.folds = [{r: sorted(set(ids)) for r, ids in f.items()} for f in self.folds]
        self.unlabelled = sorted(set(self.unlabelled))

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.folds)

    def subjects(self, role: str, fold: int = 0) -> list[str]:
        """Sorted subject ids of `role` in `fold` (empty if the fold has no such role)."""
        if not 0 <= fold < self.n_folds:
            raise BrainAgeError(f"fold {fold} does not exist; the splits have {self.n_folds}.")
        return list(self.folds[fold].get(role, []))

    def select(self, cohort: Cohort, role: str, fold: int = 0) -> Cohort:
        """The scans of `cohort` whose subject is in `role` of `fold`."""
        keep = set(self.subjects(role, fold))
        return cohort.select(cohort.table["participant_id"].isin(keep).to_numpy())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (see the module docstring)."""
        return {
            "format": FORMAT, "version": VERSION, "method": self.method, "seed": self.seed,
            "params": self.params, "cohort_hash": self.cohort_hash,
            "n_subjects": self.n_subjects, "unlabelled": self.unlabelled, "folds": self.folds,
        }

    def to_json(self, path: str | Path) -> None:
        """Write the splits as JSON, atomically."""
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: Any, where: str = "<memory>") -> Splits:
        """Build from a dict read from JSON; every structural problem is reported at once."""
        problems = _structure_problems(data, where)
        if problems:
            raise ValidationError(problems, f"splits file {where}")
        return cls(
            method=str(data.get("method", "user")), seed=data.get("seed"),
            params=dict(data.get("params") or {}), folds=data["folds"],
            cohort_hash=data.get("cohort_hash"), unlabelled=list(data.get("unlabelled") or []),
            n_subjects=data.get("n_subjects"),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Splits:
        """Read a splits file written by :meth:`to_json` or by hand."""
        p = Path(path)
        if not p.is_file():
            raise BrainAgeError(f"{p}: splits file not found. Fix: check the path.")
        data = parse_json_file(p, "repair the file, or delete it to make new splits")
        return cls.from_dict(data, str(p))

    def check(self, cohort: Cohort, where: str = "splits") -> None:
        """Refuse splits that do not fit `cohort`.

        Raises:
            BrainAgeError: the splits were made for a cohort with other subjects.
            ValidationError: unknown subjects, a subject in two roles of a fold, a
                subject without an age in a role that is fitted on, or a synthetic subject
                in any role but ``train``.
        """
        ids = set(cohort.subjects)
        if self.cohort_hash is not None and self.cohort_hash != cohort_hash(ids):
            raise BrainAgeError(_other_cohort_message(self, ids, where, cohort.source))
        with_age = set(cohort.table.loc[cohort.table["age"].notna(), "participant_id"])
        problems = _unknown_problems(self, ids, where) + _overlap_problems(self, where)
        problems += _unlabelled_problems(self, with_age, ids, where)
        problems += _synthetic_problems(self, synthetic_subjects(cohort), where)
        if problems:
            raise ValidationError(problems, f"splits file {where}")

    def describe(self, cohort: Cohort) -> str:
        """A few lines per fold: subjects, mean age and sites of each role."""
        first = cohort.table.dropna(subset=["age"]).sort_values("age")
        first = first.drop_duplicates("participant_id").set_index("participant_id")
        lines = [f"Splits: {self.method}, seed {self.seed}, {self.n_folds} fold(s)"]
        for i, fold in enumerate(self.folds):
            parts = []
            for role, ids in fold.items():
                rows = first.reindex(ids)
                age = rows["age"].mean()
                sites = rows["site"].dropna().nunique()
                age_text = "n/a" if pd.isna(age) else f"{age:.1f}"
                parts.append(f"{role} {len(ids)} (mean age {age_text}, {sites} site(s))")
            lines.append(f"  fold {i}: " + "; ".join(parts))
        if self.unlabelled:
            lines.append(f"  without age (predict only): {len(self.unlabelled)}")
        return "\n".join(lines)


def _structure_problems(data: Any, where: str) -> list[Problem]:
    fix = "write folds as a list of {role: [participant_id, ...]} objects"
    if not isinstance(data, dict) or not isinstance(data.get("folds"), list) or not data["folds"]:
        return [Problem(where, "an object with a non-empty 'folds' list", fix, column="folds")]
    problems = []
    for i, fold in enumerate(data["folds"]):
        if not isinstance(fold, dict):
            problems.append(Problem(f"{where}, fold {i}", "an object mapping role to ids", fix))
            continue
        for role, ids in fold.items():
            if role not in ROLES:
                problems.append(Problem(
                    f"{where}, fold {i}", f"a role among {list(ROLES)}", "rename the role", role))
            if not isinstance(ids, list) or not all(isinstance(s, str) for s in ids):
                problems.append(Problem(
                    f"{where}, fold {i}, role {role!r}", "a list of participant_id strings", fix))
    if not isinstance(data.get("unlabelled", []), list):
        problems.append(Problem(where, "a list of ids", fix, column="unlabelled"))
    return problems


def _other_cohort_message(s: Splits, ids: set[str], where: str, source: str) -> str:
    listed = {x for f in s.folds for v in f.values() for x in v} | set(s.unlabelled)
    unknown, absent = listed - ids, ids - listed
    lines = [
        f"{where}: these splits were made for another cohort "
        f"({s.n_subjects if s.n_subjects is not None else '?'} subjects, {s.cohort_hash}); "
        f"cohort {source} has {len(ids)} subjects ({cohort_hash(ids)})."
    ]
    if unknown:
        lines.append(f"  {len(unknown)} subject(s) in the splits are not in the cohort: "
                     f"{_show(unknown)}")
    if absent:
        lines.append(f"  {len(absent)} subject(s) of the cohort are in no split: {_show(absent)}")
    lines.append(f"Fix: use the splits file made for this cohort, or delete {where} to make "
                 "new splits (results are then not comparable with earlier runs).")
    return "\n".join(lines)


def _unknown_problems(s: Splits, ids: set[str], where: str) -> list[Problem]:
    problems = []
    named = [(f"fold {i} {r}", v) for i, f in enumerate(s.folds) for r, v in f.items()]
    for name, listed in [*named, ("unlabelled", s.unlabelled)]:
        unknown = set(listed) - ids
        if unknown:
            problems.append(Problem(
                where, f"only subjects of the cohort in {name}",
                "remove them or use the cohort they belong to",
                f"{len(unknown)} unknown: {_show(unknown)}"))
    return problems


def _overlap_problems(s: Splits, where: str) -> list[Problem]:
    problems = []
    for i, fold in enumerate(s.folds):
        roles = list(fold)
        for a_i, a in enumerate(roles):
            for b in roles[a_i + 1:]:
                both = set(fold[a]) & set(fold[b])
                if both:
                    problems.append(Problem(
                        where, f"'{a}' and '{b}' of fold {i} to share no subject",
                        "keep each subject in one role per fold",
                        f"{len(both)} in both: {_show(both)}"))
    return problems


def _unlabelled_problems(s: Splits, with_age: set[str], ids: set[str], where: str
                         ) -> list[Problem]:
    problems = []
    for i, fold in enumerate(s.folds):
        for role in FIT_ROLES:
            no_age = (set(fold.get(role, [])) & ids) - with_age  # unknown ids reported apart
            if no_age:
                problems.append(Problem(
                    where, f"subjects with an age in '{role}' of fold {i}",
                    "move subjects without an age to 'unlabelled' (they can only be predicted)",
                    f"{len(no_age)} without age: {_show(no_age)}"))
    return problems


def _synthetic_problems(s: Splits, synthetic: set[str], where: str) -> list[Problem]:
    problems = []
    for i, fold in enumerate(s.folds):
        for role, ids in fold.items():
            found = set(ids) & synthetic if role != "train" else set()
            if found:
                problems.append(Problem(
                    where, f"real subjects only in '{role}' of fold {i} (synthetic subjects "
                    "may only train)", "evaluate on real scans only; add synthetic subjects "
                    "to training with `brainage train --synthetic DIR`",
                    f"{len(found)} synthetic: {_show(found)}"))
    return problems


def given_splits(splits: Splits | str | Path, cohort: Any) -> Splits:
    """Splits a user gave (an object or a splits file), checked against `cohort`."""
    if isinstance(splits, Splits):
        splits.check(cohort, "given splits")
        return splits
    given = Splits.from_json(splits)
    given.check(cohort, str(splits))
    return given
