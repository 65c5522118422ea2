"""OpenBHB's own split: each subject's role read from the cohort's ``split`` column
(``brainage split --method openbhb``; :mod:`brainage.data.splits` holds the other methods
and :func:`~brainage.data.splits.make_splits`)."""

from __future__ import annotations

import numpy as np

from brainage.data.cohort import Cohort
from brainage.data.splits_deal import carve, check_fraction, check_seed, make_result, subject_table, use_site
from brainage.data.splits_file import ROLES, Splits
from brainage.errors import BrainAgeError, Problem, ValidationError

#: Default mapping of OpenBHB ``split`` values (lower-cased) to roles; None leaves rows out.
OPENBHB_ROLES: dict[str, str | None] = {
    "train": "train", "training": "train", "val": "val", "validation": "val",
    "internal_test": "internal_test", "internal_val": "internal_test", "internal": "internal_test",
    "external_test": "external_test", "external_val": "external_test", "external": "external_test",
    "test": "test",
}


def openbhb(cohort: Cohort, column: str = "split", mapping: dict[str, str | None] | None = None,
            val_fraction: float = 0.0, seed: int = 0, stratify_site: bool = True,
            n_age_bins: int | None = None) -> Splits:
    """OpenBHB's own split, read from the cohort's `column` (internal / external test, train).

    Args:
        cohort: The cohort, with a `column` holding one split value per scan.
        column: Name of the split column.
        mapping: Extra or overriding value -> role entries (values compared lower-cased);
            a role of None leaves those subjects out. Defaults: OPENBHB_ROLES.
        val_fraction: Fraction of ``train`` held out as ``val`` (stratified, seeded) when
            the column has no validation values.
        seed: Random seed for the val draw.
        stratify_site: Balance sites between train and val when the cohort has sites.
        n_age_bins: Age quantile bins for val (None: fine; see kfold).

    Raises:
        BrainAgeError: no such column, or a val asked for when the column already has one.
        ValidationError: missing or unknown split values, or a subject in two roles.
    """
    check_seed(seed)
    check_fraction("val_fraction", val_fraction)
    roles = _openbhb_roles(cohort, column, {**OPENBHB_ROLES, **_lower(mapping or {})})
    subj, unlabelled = subject_table(cohort)
    fold: dict[str, list[str]] = {}
    for role in ROLES:
        ids = [pid for pid in subj.index if roles.get(pid) == role]
        if ids:
            fold[role] = ids
    if val_fraction > 0:
        if "val" in fold:
            raise BrainAgeError(f"column '{column}' already has validation subjects. "
                                "Fix: pass val_fraction=0.")
        train = subj.loc[fold.get("train", [])]
        fold.update(carve(train, val_fraction, np.random.default_rng(seed),
                          use_site(cohort, stratify_site), n_age_bins))
    unlabelled = [pid for pid in unlabelled if roles.get(pid) is not None]
    params = {"column": column, "mapping": mapping or {}, "val_fraction": val_fraction,
              "n_age_bins": n_age_bins}
    return make_result("openbhb", seed, params, [fold], cohort, unlabelled)


def _lower(mapping: dict[str, str | None]) -> dict[str, str | None]:
    bad = {k: v for k, v in mapping.items() if v is not None and v not in ROLES}
    if bad:
        raise BrainAgeError(f"mapping {bad}: roles must be one of {list(ROLES)} or None. "
                            "Fix: map each split value to one of those roles.")
    return {str(k).strip().lower(): v for k, v in mapping.items()}


def _openbhb_roles(cohort: Cohort, column: str, mapping: dict[str, str | None]
                   ) -> dict[str, str | None]:
    """Role of every subject from `column`; every bad row or subject reported at once."""
    t = cohort.table
    if column not in t.columns:
        raise BrainAgeError(
            f"{cohort.source}: no '{column}' column, so there is no OpenBHB split to read. "
            "Fix: load OpenBHB's participants.tsv (it has a 'split' column) or choose another "
            "method (kfold, holdout, sites).")
    raw = t[column].astype("string").str.strip().str.lower()
    known = sorted(k for k in mapping)
    problems = [Problem(cohort.source, f"a split value ({', '.join(known)})",
                        "fill in the split of every scan", row=int(i) + 1, column=column)
                for i in np.flatnonzero(raw.isna().to_numpy())]
    for value in sorted(set(raw.dropna()) - set(mapping)):
        rows = [int(r) + 1 for r in np.flatnonzero((raw == value).fillna(False).to_numpy())]
        also = f"; rows with this value: {_rows(rows)}" if len(rows) > 1 else ""
        problems.append(Problem(
            cohort.source, f"one of {known}{also}",
            f"pass mapping={{'{value}': ROLE}} (--split-map {value}=ROLE), ROLE one of "
            f"{', '.join(ROLES)} or None to leave them out", value, rows[0], column))
    role = raw.map(lambda v: mapping.get(v) if isinstance(v, str) else None)
    per_subject = role.fillna("-").groupby(t["participant_id"]).unique()
    for pid, values in per_subject.items():
        if len(values) > 1:
            problems.append(Problem(cohort.source, f"one split for all scans of {pid}",
                                    "give every scan of a subject the same split",
                                    sorted(values), column=column))
    if problems:
        raise ValidationError(problems, f"cohort {cohort.source}")
    return {str(pid): (None if v[0] == "-" else str(v[0])) for pid, v in per_subject.items()}


def _rows(rows: list[int], show: int = 10) -> str:
    more = f" ... and {len(rows) - show} more" if len(rows) > show else ""
    return ", ".join(map(str, rows[:show])) + more


def parse_mapping(text: str | None) -> dict[str, str | None]:
    """``"internal_val=internal_test,unused="`` -> ``{"internal_val": "internal_test",
    "unused": None}`` (an empty role or ``none`` leaves those rows out)."""
    out: dict[str, str | None] = {}
    for item in filter(None, (x.strip() for x in (text or "").split(","))):
        if "=" not in item:
            raise BrainAgeError(f"split map entry {item!r}: expected VALUE=ROLE. "
                                "Fix: e.g. --split-map internal_val=internal_test.")
        key, role = (x.strip() for x in item.split("=", 1))
        out[key] = None if role.lower() in ("", "none") else role
    return out
