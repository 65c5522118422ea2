"""Honest model selection: inner folds choose, outer folds score (nested cross-validation).

A *candidate* is anything that can be fitted on some subjects and predict others: a
function ``fit_predict(train_idx, test_idx) -> (len(test_idx),) predictions``, indices into
the same arrays as ``y``. :func:`select` compares candidates by cross-validation on the
training indices it is given and nothing else; :func:`nested` runs it inside every outer
fold, so the outer predictions come from a choice made without the subjects they score.
The mean absolute error of those predictions is an estimate of the whole procedure
(choosing included), which picking the best of several outer scores is not.

numpy only; the same routine serves training (a run that chooses its features inside its
folds) and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainage.errors import InputError

#: ``fit_predict(train_idx, test_idx) -> predictions``.
Candidate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def stratified_folds(y: np.ndarray, index: np.ndarray, folds: int, seed: int,
                     groups: np.ndarray | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs of `index`, test parts balanced by the order of `y`.

    Subjects are sorted by ``y`` (ties broken by a seeded shuffle) and dealt to folds in
    blocks of `folds`, each block in a seeded random order, so every fold spans the range.
    With `groups` ((N,) subject of every index), whole subjects are dealt (by their mean
    ``y``), so no subject's scans sit on both sides.
    """
    index = np.asarray(index)
    y = np.asarray(y, dtype=np.float64)
    key = np.asarray(groups)[index] if groups is not None else index
    units, inverse = np.unique(key, return_inverse=True)
    if folds < 2 or len(units) < folds:
        raise InputError(f"{folds} folds of {len(units)} subjects: expected 2 <= folds <= "
                         "subjects. Fix: use fewer folds.")
    unit_y = np.bincount(inverse, weights=y[index]) / np.bincount(inverse)
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(units))
    order = shuffled[np.argsort(unit_y[shuffled], kind="stable")]
    assign = np.empty(len(units), dtype=np.int64)
    for start in range(0, len(order), folds):
        block = order[start:start + folds]
        assign[block] = rng.permutation(folds)[:len(block)]
    fold_of = assign[inverse]  # per index
    return [(np.sort(index[fold_of != k]), np.sort(index[fold_of == k])) for k in range(folds)]


def cv_predictions(candidate: Candidate, y: np.ndarray, index: np.ndarray, folds: int,
                   seed: int, groups: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold predictions of `candidate` for `index` (same order), folds within it."""
    out = np.empty(len(index))
    pos = {int(i): p for p, i in enumerate(index)}
    for train, test in stratified_folds(y, index, folds, seed, groups):
        out[[pos[int(i)] for i in test]] = candidate(train, test)
    return out


def select(candidates: Mapping[str, Candidate], y: np.ndarray, index: np.ndarray,
           folds: int = 5, seed: int = 0, groups: np.ndarray | None = None
           ) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest cross-validated MAE on `index` alone, and every MAE.

    Ties go to the candidate listed first (so put the simplest first).
    """
    if not candidates:
        raise InputError("model selection got no candidates. Fix: list at least one.")
    y = np.asarray(y, dtype=np.float64)
    index = np.asarray(index)
    scores = {name: float(np.mean(np.abs(
        cv_predictions(c, y, index, folds, seed, groups) - y[index])))
        for name, c in candidates.items()}
    best = min(scores, key=lambda n: (scores[n], list(candidates).index(n)))
    return best, scores


@dataclass
class NestedResult:
    """What :func:`nested` found.

    Attributes:
        predictions: (N,) outer out-of-fold predictions of the selection procedure (NaN for
            indices in no outer test part).
        chosen: The candidate each outer fold chose.
        inner_scores: Per outer fold, every candidate's inner cross-validated MAE.
        candidate_predictions: Per candidate, (N,) outer predictions of that candidate
            alone (each fixed candidate's honest out-of-fold score; the best of these is
            *not* an honest figure, ``predictions`` is).
    """

    predictions: np.ndarray
    chosen: list[str]
    inner_scores: list[dict[str, float]]
    candidate_predictions: dict[str, np.ndarray] = field(default_factory=dict)

    def mae(self, y: np.ndarray, name: str | None = None) -> float:
        """MAE of the procedure (or of candidate `name` alone) over the scored indices."""
        pred = self.predictions if name is None else self.candidate_predictions[name]
        keep = np.isfinite(pred)
        return float(np.mean(np.abs(pred[keep] - np.asarray(y, float)[keep])))

    def summary(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "inner_scores": self.inner_scores}


def nested(candidates: Mapping[str, Candidate], y: np.ndarray,
           outer: Sequence[tuple[np.ndarray, np.ndarray]], inner_folds: int = 5,
           seed: int = 0, each: bool = True, groups: np.ndarray | None = None
           ) -> NestedResult:
    """Nested cross-validation: per outer fold, :func:`select` on its training part, refit
    the chosen candidate there, predict its test part.

    Args:
        candidates: Name -> candidate.
        y: (N,) targets (only training indices of each outer fold are read to choose).
        outer: (train, test) index pairs.
        inner_folds: Folds of the inner selection.
        seed: Seed of the inner folds (the same within every outer fold).
        each: Also score every candidate alone on the outer folds.
        groups: (N,) subject of every index (inner folds keep subjects whole).
    """
    y = np.asarray(y, dtype=np.float64)
    pred = np.full(len(y), np.nan)
    per = {name: np.full(len(y), np.nan) for name in candidates} if each else {}
    chosen, scores = [], []
    for train, test in outer:
        train, test = np.asarray(train), np.asarray(test)
        if np.intersect1d(train, test).size:
            raise InputError("an outer fold's training and test parts share subjects. "
                             "Fix: give disjoint index sets.")
        best, inner = select(candidates, y, train, inner_folds, seed, groups)
        chosen.append(best)
        scores.append(inner)
        for name, candidate in candidates.items():
            if name == best or each:
                p = candidate(train, test)
                if name == best:
                    pred[test] = p
                if each:
                    per[name][test] = p
    return NestedResult(pred, chosen, scores, per)


def bootstrap_mae(y: np.ndarray, pred: np.ndarray, n: int = 2000, seed: int = 0
                  ) -> tuple[float, float, float]:
    """MAE and its percentile bootstrap 95 % interval over subjects."""
    err = np.abs(np.asarray(pred, float) - np.asarray(y, float))
    err = err[np.isfinite(err)]
    rng = np.random.default_rng(seed)
    boot = err[rng.integers(0, len(err), size=(n, len(err)))].mean(axis=1)
    return float(err.mean()), float(np.quantile(boot, 0.025)), float(np.quantile(boot, 0.975))
