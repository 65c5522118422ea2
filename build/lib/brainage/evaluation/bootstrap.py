"""Vectorised bootstrap: every resample is a row of weights, every metric a weighted sum.

A bootstrap resample that draws scan ``i`` ``c_i`` times is the weight vector ``c``;
means, variances and correlations over the resample are weighted sums, so ``B``
resamples of ``n`` scans are one ``(B, n) @ (n, k)`` product. Ranks (Spearman) come
from cumulative sums of the weights in sorted order, ties averaged exactly as
:func:`scipy.stats.rankdata` does. Resampling is by cluster (participant), so the
sessions of one subject stay together; with one scan per subject it is the ordinary
bootstrap.

The point estimate is the same function evaluated at weights all ones, so estimates and
intervals can never disagree about a definition.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: Metrics computed by :func:`core_stats` (years unless unitless).
CORE_METRICS: tuple[str, ...] = (
    "mae", "rmse", "pearson_r", "r2", "mean_gap", "gap_slope", "spearman_gap_age",
)
StatFn = Callable[[np.ndarray], dict[str, np.ndarray]]
_CHUNK_ELEMENTS = 2_000_000  # ~16 MB per (chunk, n) float64 temporary


def resample_indices(n_clusters: int, n_boot: int, seed: int | np.random.Generator) -> np.ndarray:
    """Draw all bootstrap resamples at once: ``(n_boot, n_clusters)`` cluster indices."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_clusters, size=(n_boot, n_clusters))


def iter_weights(idx: np.ndarray, cluster_of: np.ndarray) -> Iterator[np.ndarray]:
    """Yield scan weights for chunks of resamples.

    Args:
        idx: ``(B, G)`` cluster indices from :func:`resample_indices`.
        cluster_of: ``(n,)`` cluster code (0..G-1) of each scan.

    Yields:
        ``(b, n)`` float weights: how often each scan occurs in each resample.
    """
    n_boot, n_clusters = idx.shape
    step = max(1, _CHUNK_ELEMENTS // max(1, cluster_of.size))
    for start in range(0, n_boot, step):
        chunk = idx[start:start + step]  # (b, G)
        offsets = np.arange(chunk.shape[0])[:, None] * n_clusters
        counts = np.bincount((chunk + offsets).ravel(), minlength=chunk.size)
        counts = counts.reshape(chunk.shape).astype(float)
        yield np.take(counts, cluster_of, axis=1)  # (b, G) -> (b, n)


def bootstrap(fn: StatFn, cluster_of: np.ndarray, n_boot: int, seed: int,
              level: float = 0.95) -> dict[str, dict[str, np.ndarray]]:
    """Point estimates and percentile intervals of every statistic `fn` returns.

    Args:
        fn: Maps ``(b, n)`` weights to ``{name: (b,) or (b, K) array}``.
        cluster_of: ``(n,)`` cluster code of each scan (resampling unit).
        n_boot: Number of resamples (0 gives estimates with NaN intervals).
        seed: Seed of the resampling.
        level: Coverage of the interval.

    Returns:
        ``{name: {"estimate", "ci_low", "ci_high"}}`` with arrays of shape ``()`` or ``(K,)``.
    """
    point = {k: v[0] for k, v in fn(np.ones((1, cluster_of.size))).items()}
    if n_boot <= 0:
        nan = {k: np.full_like(v, np.nan, dtype=float) for k, v in point.items()}
        return {k: {"estimate": point[k], "ci_low": nan[k], "ci_high": nan[k]} for k in point}
    idx = resample_indices(int(cluster_of.max()) + 1, n_boot, seed)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in point}
    for w in iter_weights(idx, cluster_of):
        for k, v in fn(w).items():
            parts[k].append(v)
    tail = 100 * (1 - level) / 2
    out = {}
    for k, chunks in parts.items():
        samples = np.concatenate(chunks, axis=0)  # (B,) or (B, K)
        with np.errstate(all="ignore"):
            low, high = _nanpercentile(samples, [tail, 100 - tail])
        out[k] = {"estimate": point[k], "ci_low": low, "ci_high": high}
    return out


def _nanpercentile(samples: np.ndarray, q: list[float]) -> np.ndarray:
    ok = ~np.all(np.isnan(samples), axis=0)
    res = np.full((len(q),) + samples.shape[1:], np.nan)
    if np.any(ok):
        res[:, ok] = np.nanpercentile(samples[:, ok], q, axis=0)
    return res


def core_stats(w: np.ndarray, age: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """The headline metrics under weights `w` ``(b, n)``; each result is ``(b,)``.

    MAE, RMSE, Pearson r(age, predicted), R² (``1 - SSres/SStot`` of predicted vs age),
    mean signed gap, slope of the gap on age, Spearman r(gap, age). Where ages (or, for r,
    predictions) do not vary, r, R², the slope and Spearman are NaN: undefined.
    """
    gap = pred - age
    cols = np.stack([age, pred, gap, np.abs(gap), gap * gap, age * age, pred * pred,
                     age * pred, age * gap], axis=1)  # (n, 9)
    total = w.sum(axis=1)
    with np.errstate(all="ignore"):
        m = (w @ cols) / total[:, None]  # (b, 9) weighted means
        my, mp, mg, mad, mg2, myy, mpp, myp, myg = m.T
        var_y, var_p = _variance(myy, my), _variance(mpp, mp)  # NaN when (all but) constant
        cov_yp, cov_yg = myp - my * mp, myg - my * mg
        out = {
            "mae": mad,
            "rmse": np.sqrt(mg2),
            "pearson_r": _clip(cov_yp / np.sqrt(var_y * var_p)),
            "r2": 1 - mg2 / var_y,
            "mean_gap": mg,
            "gap_slope": cov_yg / var_y,
            "spearman_gap_age": _clip(weighted_spearman(w, gap, age)) + 0 * var_y,
        }
    return out


#: Variances below this fraction of the mean square are rounding noise: the values are
#: constant and correlations, R² and slopes on them are undefined (not +/-1).
_RELATIVE_VARIANCE_FLOOR = 1e-9


def _variance(mean_sq: np.ndarray, mean: np.ndarray) -> np.ndarray:
    var = mean_sq - mean * mean
    return np.where(var > _RELATIVE_VARIANCE_FLOOR * np.maximum(mean_sq, 1.0), var, np.nan)


def _clip(r: np.ndarray) -> np.ndarray:
    return np.clip(r, -1.0, 1.0)


def weighted_spearman(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman correlation of `x` and `y` within each weighted resample.

    Works in the order that sorts `x` (a correlation does not care about the order of
    scans), so only `y`'s ranks need one reordering.

    Args:
        w: ``(b, n)`` weights (counts).
        x: ``(n,)`` values.
        y: ``(n,)`` values.

    Returns:
        ``(b,)`` rank correlations (ties get their mean rank, as in scipy).
    """
    ox, oy = np.argsort(x, kind="stable"), np.argsort(y, kind="stable")
    wx = np.take(w, ox, axis=1)  # (b, n) in x order
    rx = _sorted_ranks(wx, x[ox])
    inv_oy = np.empty_like(oy)
    inv_oy[oy] = np.arange(oy.size)
    ry = np.take(_sorted_ranks(np.take(w, oy, axis=1), y[oy]), inv_oy[ox], axis=1)  # x order
    total = w.sum(axis=1)
    mean_rank = (total + 1) / 2  # exact for average ranks
    wrx = wx * rx
    sxx = np.einsum("bn,bn->b", wrx, rx) / total - mean_rank**2
    sxy = np.einsum("bn,bn->b", wrx, ry) / total - mean_rank**2
    syy = np.einsum("bn,bn->b", wx * ry, ry) / total - mean_rank**2
    return sxy / np.sqrt(sxx * syy)


def _sorted_ranks(ws: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Average ranks of sorted values `xs` ``(n,)`` under weights `ws` ``(b, n)``."""
    new = np.empty(xs.size, dtype=bool)
    new[:1] = True
    new[1:] = xs[1:] != xs[:-1]
    if new.all():  # no ties: each scan is its own value
        return _mid_ranks(ws)
    starts = np.flatnonzero(new)  # first sorted position of each distinct value
    per_value = np.add.reduceat(ws, starts, axis=1)  # (b, n) -> (b, V)
    return np.take(_mid_ranks(per_value), np.cumsum(new) - 1, axis=1)  # (b, V) -> (b, n)


def _mid_ranks(counts: np.ndarray) -> np.ndarray:
    """Mean rank of each block of tied copies: copies below + (count + 1) / 2."""
    ranks = np.cumsum(counts, axis=1)  # copies up to and including this block
    ranks -= 0.5 * counts
    ranks += 0.5
    return ranks


def subgroup_mae(w: np.ndarray, abs_gap: np.ndarray, codes: np.ndarray,
                 n_groups: int) -> np.ndarray:
    """MAE within each subgroup (site, age bin) under weights `w`.

    Args:
        w: ``(b, n)`` weights.
        abs_gap: ``(n,)`` absolute gaps.
        codes: ``(n,)`` subgroup code in ``0..n_groups-1``, or -1 for none.
        n_groups: Number of subgroups.

    Returns:
        ``(b, n_groups)``; NaN where a resample holds no scan of the subgroup.
    """
    member = np.zeros((codes.size, n_groups))
    ok = codes >= 0
    member[np.flatnonzero(ok), codes[ok]] = 1.0  # (n, K) indicator
    with np.errstate(all="ignore"):
        return (w @ (member * abs_gap[:, None])) / (w @ member)
