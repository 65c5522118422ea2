"""Which synthetic subjects to make: TGB-GAN's within-bin latent interpolation (Li et al. 2021).

Subjects are bucketed by rounded age (1-year bins by default: ``floor(age / width + 1/2)``,
halves up). In every bin with n >= 2 real subjects, up to ``cap - n`` children are planned,
each from a pair (p, q) of that bin not used before, with w ~ U(0, 1)::

    z_child = w * z_p + (1 - w) * z_q        age_child = w * age_p + (1 - w) * age_q

so every bin is topped up towards ``cap`` and the age distribution flattens. A pair is
unordered ({p, q} = {q, p}); a bin of n subjects has n(n-1)/2 of them.

When a bin's pairs run out before ``cap - n`` children (n(n-1)/2 < cap - n, e.g. n = 2 with
cap 4: one pair for two wanted children) the bin gets one child per pair and the missing
number is recorded in ``SynthesisPlan.shortfall``, as in the published code. With
``reuse_pairs=True`` the pairs are dealt again in a fresh order, with new weights, until
the bin is full (each pair is then used at most ``ceil((cap - n) / n_pairs)`` times).

The plan is pure bookkeeping (ids, weights, ages) so it can be tested, saved as small JSON
and checked for leakage before anything is decoded (:mod:`brainage.synthesis.decode`).
Each bin draws from its own seeded stream, so adding subjects to one bin leaves the other
bins' children unchanged.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from brainage.errors import InputError


@dataclass(frozen=True)
class SyntheticChild:
    """One planned synthetic subject.

    Attributes:
        child_id: Its subject id (``<prefix><bin>-<k>``, e.g. ``syn-020-0003``).
        parents: The two real subjects ``(p, q)`` it interpolates.
        weight: w, the weight of ``parents[0]`` (``1 - w`` for ``parents[1]``).
        age: ``w * age_p + (1 - w) * age_q``.
        age_bin: Index of the age bin (the rounded age for 1-year bins).
    """

    child_id: str
    parents: tuple[str, str]
    weight: float
    age: float
    age_bin: int


@dataclass(frozen=True)
class SynthesisPlan:
    """All children of one synthesis run, with the settings that made them.

    Attributes:
        children: Planned children, by bin then number.
        bin_sizes: Real subjects per bin index.
        shortfall: Bins whose pairs ran out: children missing below ``cap - n``.
        cap, seed, bin_width, reuse_pairs: The settings used.
    """

    children: tuple[SyntheticChild, ...]
    bin_sizes: dict[int, int]
    shortfall: dict[int, int] = field(default_factory=dict)
    cap: int = 50
    seed: int = 0
    bin_width: float = 1.0
    reuse_pairs: bool = False

    @property
    def ages(self) -> np.ndarray:
        """Children's ages ``(K,)``."""
        return np.array([c.age for c in self.children], dtype=float)

    @property
    def weights(self) -> np.ndarray:
        """Children's weights w ``(K,)``."""
        return np.array([c.weight for c in self.children], dtype=float)

    def new_per_bin(self) -> dict[int, int]:
        """Children per bin index (0 for bins that got none)."""
        counts = dict.fromkeys(self.bin_sizes, 0)
        for c in self.children:
            counts[c.age_bin] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (bin keys become strings)."""
        return {
            "format": "brainage-synthesis-plan", "version": 1, "cap": self.cap,
            "seed": self.seed, "bin_width": self.bin_width, "reuse_pairs": self.reuse_pairs,
            "bin_sizes": {str(b): n for b, n in self.bin_sizes.items()},
            "shortfall": {str(b): n for b, n in self.shortfall.items()},
            "children": [{"id": c.child_id, "parents": list(c.parents), "weight": c.weight,
                          "age": c.age, "age_bin": c.age_bin} for c in self.children],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisPlan:
        """Inverse of :meth:`to_dict`."""
        children = tuple(SyntheticChild(str(c["id"]), (str(c["parents"][0]), str(c["parents"][1])),
                                        float(c["weight"]), float(c["age"]), int(c["age_bin"]))
                         for c in data["children"])
        return cls(children, {int(b): int(n) for b, n in data["bin_sizes"].items()},
                   {int(b): int(n) for b, n in data.get("shortfall", {}).items()},
                   int(data["cap"]), int(data["seed"]), float(data["bin_width"]),
                   bool(data["reuse_pairs"]))


def age_bin(age: float, width: float = 1.0) -> int:
    """Index of the bin of ``age``: ``floor(age / width + 0.5)`` (halves round up)."""
    return math.floor(age / width + 0.5)


def plan_synthesis(subjects: Sequence[str], ages: Sequence[float], cap: int = 50, seed: int = 0,
                   bin_width: float = 1.0, reuse_pairs: bool = False, id_prefix: str = "syn-"
                   ) -> SynthesisPlan:
    """Plan within-bin interpolations that top every age bin up towards ``cap`` subjects.

    Args:
        subjects: Real subject ids (unique), e.g. a fold's training subjects.
        ages: Their ages in years, same order.
        cap: Target subjects per bin (real + synthetic); bins with ``n >= cap`` get none.
        seed: Random seed; the same inputs and seed give the same plan, in any input order.
        bin_width: Bin width in years (1).
        reuse_pairs: Deal the pairs again once a bin has used them all (see the module doc).
        id_prefix: Start of every child id; must not start any real subject id.

    Raises:
        BrainAgeError: mismatched lengths, duplicate ids, non-finite ages, bad settings, or
            a real id that starts with ``id_prefix``.
    """
    ids, values = _check_inputs(subjects, ages, cap, bin_width, id_prefix)
    bins: dict[int, list[str]] = {}
    for sid in sorted(ids):
        bins.setdefault(age_bin(values[sid], bin_width), []).append(sid)
    children: list[SyntheticChild] = []
    shortfall: dict[int, int] = {}
    for b in sorted(bins):
        made = _plan_bin(b, bins[b], values, cap, _bin_rng(seed, b), reuse_pairs, id_prefix)
        children += made
        missing = max(cap - len(bins[b]), 0) - len(made) if len(bins[b]) >= 2 else 0
        if missing > 0:
            shortfall[b] = missing
    return SynthesisPlan(tuple(children), {b: len(m) for b, m in sorted(bins.items())},
                         shortfall, int(cap), int(seed), float(bin_width), bool(reuse_pairs))


def _plan_bin(b: int, members: list[str], ages: dict[str, float], cap: int,
              rng: np.random.Generator, reuse: bool, prefix: str) -> list[SyntheticChild]:
    want = cap - len(members)
    if len(members) < 2 or want <= 0:
        return []
    pairs = list(combinations(members, 2))
    order = list(rng.permutation(len(pairs)))
    while reuse and len(order) < want:
        order += list(rng.permutation(len(pairs)))
    chosen = [pairs[i] for i in order[:want]]
    weights = rng.uniform(0.0, 1.0, size=len(chosen))
    return [
        SyntheticChild(f"{prefix}{b:03d}-{k:04d}", (p, q), float(w),
                       float(w * ages[p] + (1.0 - w) * ages[q]), b)
        for k, ((p, q), w) in enumerate(zip(chosen, weights, strict=True))
    ]


def _bin_rng(seed: int, b: int) -> np.random.Generator:
    """An independent stream per (seed, bin); bins may be negative (zig-zag encoded)."""
    return np.random.default_rng([int(seed), 2 * abs(b) + (b < 0)])


def _check_inputs(subjects: Sequence[str], ages: Sequence[float], cap: int, bin_width: float,
                  prefix: str) -> tuple[list[str], dict[str, float]]:
    ids, values = [str(s) for s in subjects], [float(a) for a in ages]
    if len(ids) != len(values):
        raise InputError(f"got {len(ids)} subjects but {len(values)} ages. Fix: pass one age "
                            "per subject, in the same order.")
    dupes = sorted(s for s, n in Counter(ids).items() if n > 1)
    bad = [s for s, a in zip(ids, values, strict=True) if not math.isfinite(a)]
    clash = [s for s in ids if s.startswith(prefix)]
    problems = [f"duplicate subject ids {dupes[:5]}" if dupes else "",
                f"non-finite ages for {bad[:5]}" if bad else "",
                f"real ids {clash[:5]} start with the synthetic prefix {prefix!r}" if clash else "",
                f"cap must be a positive integer, got {cap!r}" if int(cap) != cap or cap < 1 else "",
                f"bin_width must be > 0, got {bin_width!r}" if not bin_width > 0 else ""]
    problems = [p for p in problems if p]
    if problems:
        raise InputError("cannot plan synthesis: " + "; ".join(problems) + ". Fix: pass unique "
                            "ids with finite ages, cap >= 1, bin_width > 0 and another id_prefix.")
    return ids, dict(zip(ids, values, strict=True))
