"""Seeded, subject-level splits: k-fold, holdout, leave-sites-out and OpenBHB's own split.

Every method splits *subjects*, so the sessions of one subject never straddle roles.
Subjects without any age are in no role; they are listed in ``Splits.unlabelled`` (they
can be predicted but neither fitted on nor evaluated). Stratification uses each subject's
first-session (youngest) age and that scan's site.

Subjects are dealt by :mod:`brainage.data.splits_deal` (per-site strata, age-sorted, fold sizes
and site counts balanced to about one subject). The file format and its checks live in
:mod:`brainage.data.splits_file`, OpenBHB's own split in :mod:`brainage.data.splits_openbhb`.

Typical use::

    splits = load_or_make_splits(run_dir / "splits.json", cohort, "kfold", k=5, seed=0)
    train = splits.select(cohort, "train", fold=0)
"""

from __future__ import annotations

import difflib
import inspect
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from brainage.data.cohort import Cohort
from brainage.data.splits_deal import (
    allocate,
    carve,
    check_fraction,
    check_seed,
    make_result,
    missing_site_problems,
    need_subjects,
    subject_table,
    use_site,
)
from brainage.data.splits_file import (
    ROLES,
    SYNTHETIC_GROUP,
    Splits,
    cohort_hash,
    synthetic_subjects,
)
from brainage.data.splits_openbhb import openbhb
from brainage.errors import BrainAgeError, ValidationError

__all__ = [
    "METHODS", "ROLES", "Splits", "cohort_hash", "kfold", "leave_sites_out",
    "load_or_make_splits", "make_splits", "openbhb", "train_val_test",
]

# --- methods -------------------------------------------------------------------------------

def kfold(cohort: Cohort, k: int = 5, seed: int = 0, stratify_site: bool = True,
          n_age_bins: int | None = None, val_fraction: float = 0.0) -> Splits:
    """Stratified k-fold cross-validation over subjects.

    Every subject with an age is in the ``test`` role of exactly one fold and in ``train``
    (or ``val``) of the others.

    Args:
        cohort: The cohort to split.
        k: Number of folds (at least 2).
        seed: Random seed; the same seed and cohort give the same folds.
        stratify_site: Balance sites across folds when the cohort has sites (a partly
            missing site column is then an error naming the rows).
        n_age_bins: None (default) stratifies age finely: each site's subjects, sorted by
            age, are shared out run by run (about one per fold per k subjects). An integer
            first cuts ages into that many quantile bins (bins with fewer than k subjects
            merged), the coarser classic scheme.
        val_fraction: Fraction of each fold's training subjects held out as ``val``.

    Raises:
        BrainAgeError: bad parameters, or fewer than `k` subjects with an age.
        ValidationError: some scans lack a site while `stratify_site` is asked for.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 2:
        raise BrainAgeError(f"k={k!r}: expected an integer of at least 2. Fix: e.g. k=5.")
    check_seed(seed)
    check_fraction("val_fraction", val_fraction)
    by_site = use_site(cohort, stratify_site)
    subj, unlabelled = subject_table(cohort)
    need_subjects(subj, k, f"{k}-fold splitting", "lower k")
    parts = allocate(subj, [1 / k] * k, np.random.default_rng(seed), by_site, n_age_bins)
    folds = []
    for i in range(k):
        rest = subj[parts != i]
        fold_rng = np.random.default_rng([seed, i])
        fold = carve(rest, val_fraction, fold_rng, by_site, n_age_bins)
        fold["test"] = list(subj.index[parts == i])
        folds.append(fold)
    params = {"k": int(k), "stratify_site": stratify_site, "site_strata": by_site,
              "n_age_bins": n_age_bins, "val_fraction": val_fraction}
    return make_result("kfold", seed, params, folds, cohort, unlabelled)


def train_val_test(cohort: Cohort, val: float = 0.15, test: float = 0.15, seed: int = 0,
                   stratify_site: bool = True, n_age_bins: int | None = None) -> Splits:
    """One stratified train / val / test split of the subjects (method ``holdout``).

    Args:
        cohort: The cohort to split.
        val: Fraction of subjects for validation.
        test: Fraction of subjects for the test.
        seed: Random seed.
        stratify_site: Balance sites across roles when the cohort has sites.
        n_age_bins: Age quantile bins (None: fine age-sorted stratification; see kfold).

    Raises:
        BrainAgeError: bad fractions or too few subjects with an age.
        ValidationError: some scans lack a site while `stratify_site` is asked for.
    """
    check_seed(seed)
    check_fraction("val", val)
    check_fraction("test", test)
    check_fraction("val + test", val + test)
    by_site = use_site(cohort, stratify_site)
    subj, unlabelled = subject_table(cohort)
    need_subjects(subj, 1 + (val > 0) + (test > 0), "a train/val/test split", "add subjects")
    parts = allocate(subj, [1 - val - test, val, test], np.random.default_rng(seed),
                      by_site, n_age_bins)
    fold = {role: list(subj.index[parts == p]) for p, role in enumerate(("train", "val", "test"))}
    fold = {role: ids for role, ids in fold.items() if role == "train" or ids}
    params = {"val": val, "test": test, "stratify_site": stratify_site, "site_strata": by_site,
              "n_age_bins": n_age_bins}
    return make_result("holdout", seed, params, [fold], cohort, unlabelled)


def leave_sites_out(cohort: Cohort, test_sites: Sequence[str] | None = None,
                    n_test_sites: int = 1, seed: int = 0, val: float = 0.0,
                    stratify_site: bool = True, n_age_bins: int | None = None) -> Splits:
    """Hold out whole sites as an external ``test``; the other sites give train (and val).

    A subject with any scan at a held-out site is a test subject.

    Args:
        cohort: The cohort to split; every scan needs a site.
        test_sites: Sites to hold out; None draws `n_test_sites` of them with `seed`.
        n_test_sites: Number of sites to draw when `test_sites` is None.
        seed: Random seed (site draw and val).
        val: Fraction of the remaining subjects held out as ``val`` (stratified).
        stratify_site: Balance the training sites between train and val.
        n_age_bins: Age quantile bins for val (None: fine; see kfold).

    Raises:
        ValidationError: scans without a site (each row is named).
        BrainAgeError: unknown test sites, or no site left for training.
    """
    check_seed(seed)
    check_fraction("val", val)
    problems = missing_site_problems(cohort, "leave-sites-out splits by site")
    if problems:
        raise ValidationError(problems, f"cohort {cohort.source}")
    t = cohort.table
    sites = sorted(str(s) for s in t["site"].unique())
    rng = np.random.default_rng(seed)
    chosen = _choose_sites(sites, test_sites, n_test_sites, rng)
    at_test = set(t.loc[t["site"].isin(chosen), "participant_id"])
    subj, unlabelled = subject_table(cohort)
    held = subj.index.isin(list(at_test))
    need_subjects(subj[~held], 1, "training on the remaining sites", "hold out fewer sites")
    fold = carve(subj[~held], val, rng, stratify_site, n_age_bins)
    fold["test"] = list(subj.index[held])
    params = {"test_sites": chosen, "n_test_sites": len(chosen), "val": val,
              "stratify_site": bool(stratify_site), "n_age_bins": n_age_bins}
    return make_result("sites", seed, params, [fold], cohort, unlabelled)


def _choose_sites(sites: list[str], test_sites: Sequence[str] | None, n: int,
                  rng: np.random.Generator) -> list[str]:
    if test_sites is None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n < len(sites):
            raise BrainAgeError(
                f"n_test_sites={n!r}: expected 1 to {len(sites) - 1} (the cohort has "
                f"{len(sites)} site(s)). Fix: lower n_test_sites, or name test_sites.")
        return sorted(str(s) for s in rng.choice(sites, size=int(n), replace=False))
    chosen = sorted({str(s) for s in test_sites})
    unknown = [s for s in chosen if s not in sites]
    if unknown or not chosen:
        raise BrainAgeError(f"test site(s) {unknown or '[]'} not in the cohort; its sites are "
                            f"{sites}. Fix: name sites from that list.")
    if len(chosen) == len(sites):
        raise BrainAgeError(f"every site ({sites}) is a test site; none is left for training. "
                            "Fix: hold out fewer sites.")
    return chosen


# --- make once, reuse ------------------------------------------------------------------------

#: Method name -> function making it.
METHODS: dict[str, Callable[..., Splits]] = {
    "kfold": kfold, "holdout": train_val_test, "sites": leave_sites_out, "openbhb": openbhb,
}


def make_splits(cohort: Cohort, method: str = "kfold", **params: Any) -> Splits:
    """Make splits with the method named `method` (see METHODS) and its parameters.

    Raises:
        BrainAgeError: unknown method (the closest name is suggested) or parameter.
    """
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=1)
        hint = f"Did you mean '{close[0]}'? " if close else ""
        raise BrainAgeError(f"unknown split method {method!r}; valid: {list(METHODS)}. {hint}"
                            "Fix: pick one of those.")
    synthetic = synthetic_subjects(cohort)
    if synthetic:
        raise BrainAgeError(
            f"cohort {cohort.source} holds {len(synthetic)} synthetic subject(s) (group "
            f"'{SYNTHETIC_GROUP}', e.g. {sorted(synthetic)[0]}); splits are made over real "
            "subjects only, as a synthetic subject may only ever train. Fix: split the real "
            "cohort and add the synthetic subjects to its training folds (brainage train "
            "--synthetic DIR).")
    func = METHODS[method]
    allowed = [p for p in inspect.signature(func).parameters if p != "cohort"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise BrainAgeError(f"split method {method!r} takes no parameter(s) {unknown}; it takes "
                            f"{allowed}. Fix: drop or rename them.")
    return func(cohort, **params)


def load_or_make_splits(path: str | Path, cohort: Cohort, method: str = "kfold",
                        **params: Any) -> Splits:
    """Read the splits at `path` if the file exists (it wins), else make and write them once.

    An existing file is checked against `cohort` (same subjects, no unknown ids, no subject
    in two roles of a fold); `method` and `params` are then ignored, with a warning when
    they differ from the file's.

    Raises:
        BrainAgeError: the file was made for another cohort, or is malformed.
        ValidationError: the file lists unknown subjects or overlapping roles.
    """
    p = Path(path)
    if p.exists():
        splits = Splits.from_json(p)
        splits.check(cohort, str(p))
        made = {**splits.params, "seed": splits.seed}
        asked = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
        differs = splits.method != method or any(
            v is not None and made.get(k, v) != v for k, v in asked.items())
        if splits.method != "user" and differs:
            warnings.warn(f"{p}: using the existing splits ({splits.method}, seed "
                          f"{splits.seed}, {splits.params}); the requested {method} {params} "
                          "is ignored. Delete the file to make new splits.", stacklevel=2)
        return splits
    splits = make_splits(cohort, method, **params)
    splits.to_json(p)
    return splits
