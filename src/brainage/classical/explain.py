"""Exact additive explanations of linear classical models: tissue-map contribution maps.

A ridge member predicts ``f(x) = b + sum_j c_j (x_j - m_j) / s_j`` (``m``, ``s``: the mean
and SD of its training features), so feature ``j`` contributes ``c_j (x_j - m_j) / s_j``
relative to the prediction for the training features' mean, which is ``b`` (the mean
training prediction). The Gaussian process has a linear kernel
``k(u, v) = C (sigma_0^2 + u . v)`` and is the same kind of model::

    f(x) = y_mean + y_std C (sigma_0^2 sum(alpha) + u . (T^T alpha)),   u = (x - m) / s

(``T``: its standardised training features, ``alpha``: its dual weights), so
``c = y_std C T^T alpha`` and ``b = y_mean + y_std C sigma_0^2 sum(alpha)``: the intercept
holds the ``sigma_0`` term. Kernel ridge with an RBF kernel is not additive over features
and is refused.

A map feature is the mean of one pooled block of a (smoothed) tissue map, or of one
template parcel; its contribution is spread evenly over the block's (parcel's) grid voxels
and the tissue maps are summed, so the map sums to the map features' total contribution.
The global features (volumes, ventricular CSF, tissue fractions) are reported as numbers.
Fold members are averaged (the run predicts their mean), so
``map.sum() + sum(volumes) == prediction - baseline`` exactly, ``baseline`` being the mean
of the members' ``b``. Numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from brainage.classical.features import MEASURE_NAMES, VOLUME_NAMES, FeatureMaker
from brainage.classical.model import ClassicalModel
from brainage.errors import InputError

LINEAR_ESTIMATORS = ("ridge", "svr", "gpr")


@dataclass(frozen=True)
class LinearForm:
    """A classical member as ``intercept + coef . (x - mean) / scale``.

    Attributes:
        coef: ``(F,)`` weights of the standardised features.
        mean: ``(F,)`` training feature means (the baseline).
        scale: ``(F,)`` training feature scales.
        intercept: The prediction at the baseline (the mean training prediction).
    """

    coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    intercept: float

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """``(F,)`` additive contributions of features `x` (years)."""
        return self.coef * (np.asarray(x, dtype=np.float64) - self.mean) / self.scale

    def predict(self, x: np.ndarray) -> float:
        """The prediction for features `x`: intercept + the contributions' sum."""
        return float(self.intercept + self.contributions(x).sum())


def linear_form(model: ClassicalModel) -> LinearForm:
    """The exact linear form of a ridge or linear-kernel GP member.

    Raises:
        InputError: the estimator is not linear in the features (kernel ridge, RBF).
    """
    arrays, params = model.fitted.arrays, model.fitted.params
    if model.estimator in ("ridge", "svr"):
        return LinearForm(arrays["coef"], arrays["mean"], arrays["scale"],
                          float(params["intercept"]))
    if model.estimator == "gpr":
        k = float(params["constant"]) * float(params["y_std"])
        alpha = arrays["alpha"]
        return LinearForm(k * (arrays["train"].T @ alpha), arrays["mean"], arrays["scale"],
                          float(params["y_mean"]) + k * float(params["sigma_0"]) ** 2
                          * float(alpha.sum()))
    raise not_additive(model.estimator)


def not_additive(estimator: str) -> InputError:
    """The refusal for an estimator without an exact contribution map."""
    return InputError(
        f"classical estimator {estimator!r} (kernel ridge with an RBF kernel) is not additive "
        f"over its features, so it has no exact contribution map; maps exist for the linear "
        f"estimators {', '.join(LINEAR_ESTIMATORS)}. Fix: train with the tissue_ridge or "
        "tissue_gpr preset (`brainage train PREPARED RUN -c tissue_ridge`) to get maps, or "
        "skip the maps for this run (BIDS App: --no-explain).")


@dataclass
class Contributions:
    """Linear contributions of one scan, averaged over the fold members.

    Attributes:
        map: ``(X, Y, Z)`` float64 contribution map on the grid (years per voxel).
        volumes: Contribution of each volume feature (years), empty without them.
        prediction: The members' mean prediction.
        baseline: The members' mean prediction at their training features' mean.
    """

    map: np.ndarray
    volumes: dict[str, float] = field(default_factory=dict)
    prediction: float = 0.0
    baseline: float = 0.0

    @property
    def total(self) -> float:
        """Sum of the map and the volume contributions (= prediction - baseline)."""
        return float(self.map.sum() + sum(self.volumes.values()))


def explain_models(models: list[ClassicalModel], tissues: np.ndarray, affine_det: float,
                   shape: tuple[int, ...]) -> Contributions:
    """Contributions of `models` (a run's fold members) for one scan's tissue maps.

    Args:
        models: Classical members (ridge or gpr) on one grid.
        tissues: ``(C, X, Y, Z)`` tissue maps (the members' channels).
        affine_det: The scan's template-to-native affine determinant (QC ``affine_det``).
        shape: The grid shape ``(X, Y, Z)``.

    Raises:
        InputError: a non-linear estimator, or tissue maps off the members' grid.
    """
    if not models:
        raise InputError("no classical members to explain.")
    forms = [linear_form(m) for m in models]  # every refusal before any work
    total = np.zeros(tuple(shape), dtype=np.float64)
    volumes: dict[str, float] = {}
    preds, bases = [], []
    for model, form in zip(models, forms, strict=True):
        x = model.features(tissues, affine_det).astype(np.float64)
        c = form.contributions(x)
        start = 0
        for kind, name, size in model.features.layout():
            part = c[start:start + size]
            start += size
            if kind == "voxels":
                total += features_to_map(model.features, part, shape, maps=1)
            elif kind == "parcels":
                total += parcels_to_map(model.features.regions[name.split("/")[1]], part)
            else:
                names = MEASURE_NAMES if kind == "measures" else VOLUME_NAMES
                for n, value in zip(names, part, strict=True):
                    volumes[n] = volumes.get(n, 0.0) + float(value)
        preds.append(form.predict(x))
        bases.append(form.intercept)
    k = len(models)
    return Contributions(total / k, {n: v / k for n, v in volumes.items()},
                         float(np.mean(preds)), float(np.mean(bases)))


def parcels_to_map(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Spread per-parcel values evenly over their voxels: ``(X, Y, Z)``, sum = values.sum()
    (over parcels that have voxels)."""
    flat = labels.ravel().astype(np.int64)
    counts = np.bincount(flat, minlength=values.size + 1)[1:values.size + 1]
    per_voxel = np.concatenate([[0.0], np.where(counts > 0, values / np.maximum(counts, 1),
                                                0.0)])
    return per_voxel[flat].reshape(labels.shape)


def features_to_map(maker: FeatureMaker, values: np.ndarray, shape: tuple[int, ...],
                    maps: int | None = None) -> np.ndarray:
    """Spread per-block values of the map features onto the grid voxels of their blocks.

    Args:
        maker: The features' maker (its spec's maps, pool and pooled mask).
        values: ``(maps * mask.sum(),)`` values in feature order.
        shape: The grid shape ``(X, Y, Z)``.
        maps: How many maps `values` holds (default: every map of the spec).

    Returns:
        ``(X, Y, Z)`` float64 map, each block's value divided evenly over its voxels on
        the grid (edge blocks have fewer), summed over the maps; its sum is ``values.sum()``.
    """
    pool = maker.spec.pool
    pooled = tuple(-(-int(n) // pool) for n in shape)
    if tuple(maker.mask.shape) != pooled:
        raise InputError(f"classical model's feature mask has shape {maker.mask.shape}; "
                         f"expected {pooled} for the grid {tuple(shape)} pooled by {pool}. "
                         "Fix: explain with the run's own preprocessing grid.")
    n = int(maker.mask.sum())
    k = len(maker.spec.maps) if maps is None else int(maps)
    if values.size != k * n:
        raise InputError(f"{values.size} map feature values; expected {k * n}.")
    blocks = np.zeros(pooled, dtype=np.float64)
    for i in range(k):
        blocks[maker.mask] += values[i * n:(i + 1) * n]
    counts = np.ones(pooled)
    for axis, size in enumerate(shape):  # voxels of each block inside the grid, per axis
        per_axis = np.minimum(pool, int(size) - pool * np.arange(pooled[axis]))
        counts = counts * per_axis.reshape([-1 if a == axis else 1 for a in range(3)])
    spread = blocks / counts
    for axis in range(3):
        spread = np.repeat(spread, pool, axis=axis)
    return spread[tuple(slice(0, int(s)) for s in shape)]


def describe(models: list[ClassicalModel]) -> dict[str, Any]:
    """The sidecar's description of linear contributions for `models`."""
    spec = models[0].features.spec
    return {
        "Method": "linear_contributions",
        "MethodDescription": (
            "linear contributions: each feature's exact additive term "
            "w_j (x_j - mean_j) / scale_j of the linear model (ridge, or the linear-kernel "
            "Gaussian process's effective weights), spread evenly over the grid voxels of "
            "its pooled block and summed over the tissue maps; averaged over the fold "
            "models. Smoothing makes a block's value reflect tissue within about the "
            "smoothing FWHM of it."),
        "Baseline": "the training features' mean (each fold model's own training "
                    "subjects); its prediction is the mean training prediction",
        "Estimator": sorted({m.estimator for m in models}),
        "FoldModels": len(models),
        "Features": spec.to_dict(),
    }
