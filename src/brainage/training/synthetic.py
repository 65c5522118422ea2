"""Synthetic subjects in a training run: ``brainage train --synthetic DIR --synthetic-ratio R``.

Rules, checked for every fold before the run folder is written:

1. **No leakage through the GAN.** Fold k may use the children of a GAN member only when
   every subject that member saw (trained on or chose its epoch by) is a training subject
   of fold k. A GAN trained on all subjects therefore never feeds a cross-validation fold
   (it saw the fold's test subjects): train one GAN per fold on the run's splits
   (``brainage gan train --folds K`` or ``--splits``). When several members qualify, the
   one of fold k is preferred, then the one that saw the most subjects.
2. **No leakage through the parents.** A child is used only where both parents are
   training subjects of the fold (:func:`~brainage.synthesis.children_per_fold`).
3. **Synthetic subjects only train.** They are added to the fold's ``train`` role only; the
   augmented fold is checked with :func:`~brainage.synthesis.check_synthetic_placement`.
   Validation, test and out-of-fold predictions see real scans only.

Mixing is explicit and seeded: ``round(R * real training subjects)`` children per fold (at
most the eligible ones), chosen by age balancing (the age bin with the fewest subjects so
far gets the next child) or at random, never in file order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage.data.splits_file import Splits
from brainage.errors import InputError
from brainage.io import read_table
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.synthesis import check_synthetic_placement, children_per_fold
from brainage.synthesis.dataset import read_manifest
from brainage.synthesis.plan import SyntheticChild, age_bin
from brainage.training.config import SyntheticSpec


@dataclass
class FoldMix:
    """The synthetic subjects of one fold.

    Attributes:
        fold: Fold index.
        member: GAN member whose children are used.
        eligible: Children whose parents both train in the fold.
        chosen: Ids of the children added to the fold's training set.
        real: Real training subjects of the fold.
    """

    fold: int
    member: str
    eligible: int
    chosen: list[str]
    real: int


@dataclass
class SyntheticMix:
    """Synthetic children chosen for every fold of a run.

    Attributes:
        spec: The config's ``synthetic`` section.
        table: The synthetic dataset's prepared table (+ parents, weight, bin, GAN fold).
        manifest: Its ``synthesis.json``.
        folds: One :class:`FoldMix` per fold.
    """

    spec: SyntheticSpec
    table: pd.DataFrame
    manifest: dict[str, Any]
    folds: list[FoldMix] = field(default_factory=list)

    def fold_data(self, table: pd.DataFrame, splits: Splits, fold: int
                  ) -> tuple[pd.DataFrame, Splits]:
        """Real table + the fold's chosen children, and splits with them in its ``train``."""
        ids = self.folds[fold].chosen
        rows = self.table[self.table["participant_id"].isin(ids)]
        both = pd.concat([table, rows[[c for c in table.columns if c in rows]]],
                         ignore_index=True)
        folds = [dict(f) for f in splits.folds]
        folds[fold] = {**folds[fold], "train": [*folds[fold].get("train", []), *ids]}
        augmented = Splits(splits.method, splits.seed, splits.params, folds, None,
                           splits.unlabelled, splits.n_subjects)
        check_synthetic_placement([folds[fold]], children(rows))
        return both, augmented

    def summary(self) -> dict[str, Any]:
        """What the model card records."""
        return {"path": self.spec.path, "gan_run": self.manifest.get("gan_run"),
                "ratio": self.spec.ratio, "balance": self.spec.balance, "seed": self.spec.seed,
                "bin_width": self.manifest.get("bin_width"),
                "rule": "children of a GAN that saw only the fold's training subjects, both "
                        "parents training subjects, training role only",
                "folds": [{"fold": f.fold, "gan_member": f.member, "real_train": f.real,
                           "eligible": f.eligible, "used": len(f.chosen)} for f in self.folds]}


def children(rows: pd.DataFrame) -> list[SyntheticChild]:
    """Rows of the synthetic table as planned children (for the leakage checks)."""
    return [SyntheticChild(str(r.participant_id), (str(r.parent_1), str(r.parent_2)),
                           float(r.weight), float(r.age), int(r.age_bin))
            for r in rows.itertuples()]


def open_synthetic(spec: SyntheticSpec, real: PreparedCohort) -> tuple[pd.DataFrame, dict]:
    """The synthetic dataset's table (with parents) and manifest, checked against `real`.

    Raises:
        BrainAgeError: not a synthetic dataset, or prepared with another spec.
    """
    from brainage.preprocessing.spec import check_spec_compatible

    root = Path(str(spec.path))
    manifest = read_manifest(root)
    syn = open_prepared(root)
    check_spec_compatible(real.spec, syn.spec, what=("real cohort", f"synthetic {root}"))
    extra = read_table(root / "participants.tsv")[["participant_id", "parent_1", "parent_2",
                                                    "weight", "age_bin", "gan_fold"]]
    table = syn.table.merge(extra, on="participant_id", how="left", validate="one_to_one")
    table[["weight", "age_bin", "gan_fold"]] = table[["weight", "age_bin", "gan_fold"]].apply(
        pd.to_numeric)
    return table, manifest


def pick_member(members: list[dict[str, Any]], train: set[str], fold: int
                ) -> dict[str, Any] | None:
    """The member whose seen subjects all train in the fold (rule 1), or None."""
    ok = [m for m in members if set(m["seen"]) <= train]
    ok.sort(key=lambda m: (m["fold"] != fold, -len(m["seen"]), m["fold"]))
    return ok[0] if ok else None


def leakage_error(members: list[dict[str, Any]], splits: Splits, fold: int, root: str
                  ) -> InputError:
    """Why no member may feed `fold`: what the closest one saw outside its training set."""
    near = min(members, key=lambda m: (m["fold"] != fold, m["fold"]))
    roles = {r: set(ids) for r, ids in splits.folds[fold].items() if r != "train"}
    outside = {r: sorted(set(near["seen"]) & ids) for r, ids in roles.items()}
    shown = "; ".join(f"{r}: {len(v)} ({', '.join(v[:5])})" for r, v in outside.items() if v)
    return InputError(
        f"fold {fold}: the GAN behind {root} (member {near['member']!r}) saw subjects that "
        f"are not training subjects of this fold ({shown or 'subjects outside the cohort'}), "
        "so its synthetic brains would leak them into training. Fix: train one GAN per fold "
        "on this run's splits (brainage gan train PREPARED GAN --splits RUN/splits.json, or "
        "--folds K with the same seed), synthesise again, and train with that dataset's "
        "splits (the default with --synthetic).")


def balance_ages(real_ages: np.ndarray, rows: pd.DataFrame, n: int, mode: str, seed: int,
                 width: float = 1.0) -> list[str]:
    """Choose `n` children (ids) from `rows`, seeded: ``age`` takes each from the bin with
    the fewest subjects so far (real + chosen; ties in a seeded random bin order), ``random``
    a random sample."""
    rng = np.random.default_rng(seed)
    order = [str(rows["participant_id"].iloc[i]) for i in rng.permutation(len(rows))]
    if mode == "random" or n >= len(order):
        return order[:n]
    bins = dict(zip(rows["participant_id"].astype(str), rows["age_bin"].astype(int),
                    strict=True))
    pools: dict[int, list[str]] = {}
    for cid in order:
        pools.setdefault(bins[cid], []).append(cid)
    counts = Counter(age_bin(float(a), width) for a in real_ages)
    rank = {b: r for r, b in enumerate(rng.permutation(sorted(pools)))}
    chosen: list[str] = []
    while len(chosen) < n:
        b = min((b for b in pools if pools[b]), key=lambda b: (counts[b], rank[b]))
        chosen.append(pools[b].pop(0))
        counts[b] += 1
    return chosen


def plan_mix(spec: SyntheticSpec, real: PreparedCohort, splits: Splits
             ) -> SyntheticMix | None:
    """Choose every fold's synthetic children (None without ``synthetic.path``).

    Raises:
        InputError: a fold no GAN member may feed (rule 1), with what leaked and the fix.
    """
    if spec.path is None:
        return None
    table, manifest = open_synthetic(spec, real)
    members = manifest["members"]
    mix = SyntheticMix(spec, table, manifest)
    ages = real.table.dropna(subset=["age"]).groupby("participant_id")["age"].min()
    for k in range(splits.n_folds):
        train = set(splits.subjects("train", k))
        member = pick_member(members, train, k)
        if member is None:
            raise leakage_error(members, splits, k, str(spec.path))
        rows = table[table["gan_fold"] == member["fold"]]
        ok = {c.child_id for c in children_per_fold([{"train": train}], children(rows))[0]}
        rows = rows[rows["participant_id"].isin(ok)]
        real_ages = ages.reindex(sorted(train)).dropna().to_numpy()
        n = min(int(round(spec.ratio * len(real_ages))), len(rows))
        chosen = balance_ages(real_ages, rows, n, spec.balance, spec.seed + k,
                              float(manifest.get("bin_width", 1.0)))
        mix.folds.append(FoldMix(k, member["member"], len(rows), chosen, len(real_ages)))
    return mix
