"""Stratified dealing of subjects into parts (folds, or train / val / test).

Subjects are grouped into strata by site (when asked) and, optionally, age quantile bin
(bins holding fewer subjects than one per part are merged with their older neighbour of
the same site). Each stratum's size is shared among the parts in proportion to their
weights, leftovers going to the parts furthest behind their target for the site and then
overall, so part sizes and site counts per part differ by at most about one. Inside a
stratum, subjects sorted by age are handed an evenly spaced sequence of parts with a
random phase, snaking back and forth, which balances age finely. All randomness comes
from the generator passed in.

Also holds the parameter and cohort checks the split methods share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.cohort import Cohort
from brainage.data.splits_file import Splits, cohort_hash
from brainage.errors import InputError, Problem, ValidationError


def subject_table(cohort: Cohort) -> tuple[pd.DataFrame, list[str]]:
    """One row per labelled subject (index participant_id, sorted; columns age, site).

    Age and site are those of the subject's youngest scan with an age (its first session).
    """
    t = cohort.table.sort_values(["age", "session", "run"], na_position="last", kind="stable")
    first = t.groupby("participant_id", sort=True)[["age", "site"]].first()
    first["site"] = first["site"].astype(object).where(first["site"].notna(), "")
    labelled = first["age"].notna()
    return first[labelled], sorted(first.index[~labelled])


def _strata(ages: np.ndarray, sites: np.ndarray, n_bins: int | None, min_size: int
            ) -> np.ndarray:
    """Stratum id per subject: site x age-quantile bin, rare bins merged upwards in age.

    `n_bins` None gives one stratum per site: dealing subjects sorted by age within it is
    already the finest age stratification, and coarse bins only fragment small sites.
    """
    n = len(ages)
    bins = np.empty(n, dtype=int)
    bins[np.argsort(ages, kind="stable")] = np.arange(n) * max(n_bins or 1, 1) // n
    strata = np.empty(n, dtype=int)
    next_id = 0
    for site in sorted(set(sites)):
        idx = np.flatnonzero(sites == site)
        values, counts = np.unique(bins[idx], return_counts=True)
        groups: list[list[int]] = []
        current: list[int] = []
        size = 0
        for value, count in zip(values, counts, strict=True):
            current.append(int(value))
            size += int(count)
            if size >= min_size:
                groups.append(current)
                current, size = [], 0
        if current:
            groups[-1:] = [groups[-1] + current] if groups else [current]
        for group in groups:
            strata[idx[np.isin(bins[idx], group)]] = next_id
            next_id += 1
    return strata


def _quotas(sizes: np.ndarray, groups: list[str], w: np.ndarray, rng: np.random.Generator
            ) -> np.ndarray:
    """Subjects per (stratum, part): proportional, leftovers to the parts furthest behind."""
    out = np.zeros((len(sizes), len(w)), dtype=int)
    have_all, ideal_all = np.zeros(len(w)), np.zeros(len(w))
    have: dict[str, np.ndarray] = {g: np.zeros(len(w)) for g in groups}
    ideal: dict[str, np.ndarray] = {g: np.zeros(len(w)) for g in groups}
    for s, (n, group) in enumerate(zip(sizes, groups, strict=True)):
        share = n * w
        base = np.floor(share + 1e-9).astype(int)
        ideal_all += share
        ideal[group] += share
        extra = int(n - base.sum())
        if extra:
            behind_site = np.round(ideal[group] - have[group] - base, 9)
            behind_all = np.round(ideal_all - have_all - base, 9)
            behind_site[w == 0] = -np.inf
            order = np.lexsort((rng.random(len(w)), -behind_all, -behind_site))
            base[order[:extra]] += 1
        out[s] = base
        have_all += base
        have[group] += base
    return out


def _sequence(quota: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Part labels, each part's occurrences evenly spaced with a random phase.

    The phase alternates u, 1 - u between a part's occurrences, so with equal quotas the
    order of parts reverses from one block to the next (a snake draft): no part is always
    handed the youngest subject of its block.
    """
    keys = []
    for q in quota[quota > 0]:
        u = rng.random()
        keys.append((np.arange(q) + np.where(np.arange(q) % 2 == 0, u, 1 - u)) / q)
    labels = [np.full(q, p) for p, q in enumerate(quota) if q]
    if not labels:
        return np.zeros(0, dtype=int)
    return np.concatenate(labels)[np.argsort(np.concatenate(keys), kind="stable")]


def allocate(subj: pd.DataFrame, weights: Sequence[float], rng: np.random.Generator,
             by_site: bool, n_age_bins: int | None) -> np.ndarray:
    """Part index (0..len(weights)-1) for every subject of `subj`, stratified."""
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    ages = subj["age"].to_numpy(dtype=float)
    sites = subj["site"].to_numpy(dtype=object) if by_site else np.full(len(subj), "", object)
    min_size = math.ceil(1 / w[w > 0].min() - 1e-9)
    strata = _strata(ages, sites, n_age_bins, min_size)
    n_strata = int(strata.max()) + 1 if len(strata) else 0
    groups = [str(sites[np.flatnonzero(strata == s)[0]]) for s in range(n_strata)]
    quotas = _quotas(np.bincount(strata, minlength=n_strata), groups, w, rng)
    parts = np.empty(len(subj), dtype=int)
    for s in range(n_strata):
        idx = np.flatnonzero(strata == s)
        idx = idx[np.argsort(ages[idx], kind="stable")]  # ties keep id order
        parts[idx] = _sequence(quotas[s], rng)
    return parts


def carve(subj: pd.DataFrame, fraction: float, rng: np.random.Generator, by_site: bool,
           n_age_bins: int | None) -> dict[str, list[str]]:
    """Split `subj` into train and (stratified) val; no val key when `fraction` is 0."""
    if fraction <= 0 or len(subj) == 0:
        return {"train": list(subj.index)}
    parts = allocate(subj, [1 - fraction, fraction], rng, by_site, n_age_bins)
    return {"train": list(subj.index[parts == 0]), "val": list(subj.index[parts == 1])}


# --- validation shared by the methods -------------------------------------------------------

def missing_site_problems(cohort: Cohort, why: str) -> list[Problem]:
    """One problem per scan without a site (one in all when no scan has a site)."""
    t = cohort.table
    missing = np.flatnonzero(t["site"].isna().to_numpy())
    fix = "fill in the site of every scan (or choose a split that does not use sites)"
    if len(missing) == len(t) and len(t) > 1:
        return [Problem(cohort.source, f"a site for every scan ({why})", fix,
                        f"no site in any of the {len(t)} rows", column="site")]
    return [
        Problem(cohort.source, f"a site for {t['participant_id'].iat[i]}'s scan ({why})", fix,
                row=int(i) + 1, column="site")
        for i in missing
    ]


def use_site(cohort: Cohort, stratify_site: bool) -> bool:
    """Whether to stratify by site: asked for and the cohort has sites (all of them)."""
    site = cohort.table["site"]
    if not stratify_site or site.isna().all():
        return False
    problems = missing_site_problems(
        cohort, "stratify_site=True; pass stratify_site=False to ignore sites")
    if problems:
        raise ValidationError(problems, f"cohort {cohort.source}")
    return True


def check_fraction(name: str, value: float) -> None:
    """Raise unless 0 <= `value` < 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise InputError(f"{name} = {value!r}: expected a fraction in [0, 1). "
                            "Fix: use e.g. 0.15.")


def check_seed(seed: int) -> None:
    """Raise unless `seed` is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed={seed!r}: expected a non-negative integer. Fix: e.g. seed=0.")


def need_subjects(subj: pd.DataFrame, n: int, what: str, fix: str) -> None:
    """Raise unless `subj` has at least `n` rows."""
    if len(subj) < n:
        raise InputError(f"{what} needs at least {n} subject(s) with an age; "
                            f"found {len(subj)}. Fix: {fix}.")


def make_result(method: str, seed: int, params: dict[str, Any],
                folds: list[dict[str, list[str]]], cohort: Cohort, unlabelled: list[str]) -> Splits:
    """A Splits for `cohort` (its hash and size filled in)."""
    return Splits(method=method, seed=int(seed), params=params, folds=folds,
                  cohort_hash=cohort_hash(cohort.subjects), unlabelled=unlabelled,
                  n_subjects=len(cohort.subjects))
