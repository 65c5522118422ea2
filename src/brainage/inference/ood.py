"""Out-of-distribution scores of new scans against a run's training data.

Training stores a compact reference next to the models (``ood_reference.json`` +
``ood_reference.safetensors``; :mod:`brainage.inference.ood_fit` writes it):

* per member, the mean and a low-rank PCA of the ``forward_features`` of its training
  scans (:class:`EmbeddingReference`) and a threshold: the 95th percentile of the
  training scans' own out-of-fold distances (each scored by a reference fitted without
  it);
* the median and robust spread of intensity statistics of the training arrays
  (:class:`IntensityReference`, :func:`intensity_stats`).

At predict time :func:`score` gives, per scan, ``embedding_distance`` (the mean over
members of distance / member threshold: above 1 is flagged ``embedding_distance``) and
``intensity_z`` (the largest robust z of the intensity statistics: above
:data:`INTENSITY_Z_MAX` is flagged ``intensity_unusual``). Runs without the reference
(older runs) predict as before, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainage.errors import InputError
from brainage.io import parse_json_file, write_json

REFERENCE_JSON = "ood_reference.json"
REFERENCE_TENSORS = "ood_reference.safetensors"
FORMAT = "brainage-ood-reference"
#: Intensity statistics of a model-input array (voxels != 0: the masked brain).
INTENSITY_STATS = ("p01", "p50", "p99", "mean", "sd")
#: Robust z beyond which a scan's intensities are flagged ``intensity_unusual``.
INTENSITY_Z_MAX = 5.0
#: Quantile of the out-of-fold training distances used as the embedding threshold.
EMBEDDING_QUANTILE = 0.95


def _not_fitted(obj: object) -> InputError:
    return InputError(f"{type(obj).__name__} is not fitted. Fix: call fit() first.")


@dataclass
class EmbeddingReference:
    """Mean + low-rank PCA of training embeddings; distance = whitened norm per feature.

    The distance of ``z`` is ``sqrt((sum_j p_j^2 / var_j + |r|^2 / var_res) / F)``: ``p``
    its scores on the ``rank`` components, ``r`` the residual, ``var_res`` the mean
    residual variance (variances floored so tiny training sets stay finite).

    With ``metric="mahalanobis"`` (classical members: their features are few subjects'
    worth of highly correlated measures) the distance is the Mahalanobis distance in the
    PCA space, with the residual counted as one more component:
    ``sqrt((sum_j p_j^2 / var_j + |r|^2 / (var_res (F - k))) / (k + 1))``, so a scan far
    along a principal direction (e.g. a tissue contrast the training scans never had)
    stands out instead of being averaged over every feature.

    Attributes:
        rank: Most principal components kept.
        metric: ``whitened`` (per feature, above) or ``mahalanobis``.
    """

    rank: int = 10
    mean_: np.ndarray | None = None
    components_: np.ndarray | None = None
    variances_: np.ndarray | None = None
    residual_variance_: float = 0.0
    metric: str = "whitened"

    def fit(self, z: np.ndarray) -> EmbeddingReference:
        """Fit on training embeddings ``(N, F)``, N >= 2."""
        z = np.asarray(z, dtype=np.float64)
        n, f = z.shape
        x = z - z.mean(axis=0)
        _u, s, vt = np.linalg.svd(x, full_matrices=False)
        k = max(0, min(self.rank, n - 1, f))
        total = float((x**2).sum() / max(n - 1, 1))
        floor = 1e-3 * total / f + 1e-12
        self.mean_ = z.mean(axis=0)
        self.components_ = vt[:k]  # (k, F)
        self.variances_ = np.maximum(s[:k] ** 2 / max(n - 1, 1), floor)
        left = total - float(self.variances_.sum())
        self.residual_variance_ = max(left / max(f - k, 1), floor)
        return self

    def distance(self, z: np.ndarray) -> np.ndarray:
        """Distances ``(N,)`` of embeddings ``(N, F)``."""
        if self.mean_ is None or self.components_ is None or self.variances_ is None:
            raise _not_fitted(self)
        x = np.asarray(z, dtype=np.float64) - self.mean_
        p = x @ self.components_.T  # (N, k)
        r = x - p @ self.components_
        if self.metric == "mahalanobis":
            k, f = self.components_.shape[0], x.shape[1]
            d2 = (p**2 / self.variances_).sum(axis=1) + (r**2).sum(axis=1) / (
                self.residual_variance_ * max(f - k, 1))
            return np.sqrt(d2 / (k + 1))
        d2 = (p**2 / self.variances_).sum(axis=1) + (r**2).sum(axis=1) / self.residual_variance_
        return np.sqrt(d2 / x.shape[1])


def oof_distances(z: np.ndarray, rank: int, folds: int = 5, seed: int = 0,
                  metric: str = "whitened") -> np.ndarray:
    """Each training embedding's distance to a reference fitted without its fold."""
    n = len(z)
    order = np.random.default_rng(seed).permutation(n)
    out = np.empty(n)
    for part in np.array_split(order, min(folds, n)):
        rest = np.setdiff1d(order, part)
        out[part] = EmbeddingReference(rank, metric=metric).fit(z[rest]).distance(z[part])
    return out


@dataclass
class IntensityReference:
    """Median and robust spread (1.4826 MAD, floored) of training intensity statistics."""

    median_: np.ndarray | None = None
    scale_: np.ndarray | None = None

    def fit(self, stats: np.ndarray) -> IntensityReference:
        """Fit on ``(N, len(INTENSITY_STATS))`` statistics of the training arrays."""
        stats = np.asarray(stats, dtype=np.float64)
        self.median_ = np.median(stats, axis=0)
        mad = 1.4826 * np.median(np.abs(stats - self.median_), axis=0)
        self.scale_ = np.maximum(mad, 1e-3 * (np.abs(self.median_) + 1e-3))
        return self

    def z(self, stats: np.ndarray) -> np.ndarray:
        """Largest absolute robust z per scan, ``(N,)``."""
        if self.median_ is None or self.scale_ is None:
            raise _not_fitted(self)
        z = (np.asarray(stats, dtype=np.float64) - self.median_) / self.scale_
        return np.abs(z).max(axis=1)


def intensity_stats(array: np.ndarray) -> np.ndarray:
    """:data:`INTENSITY_STATS` of a model-input array (voxels != 0, else all)."""
    a = np.asarray(array, dtype=np.float32).ravel()
    vals = a[a != 0] if np.count_nonzero(a) else a
    p01, p50, p99 = np.percentile(vals, [1, 50, 99])
    return np.array([p01, p50, p99, vals.mean(), vals.std()], dtype=np.float64)


@dataclass
class OodReference:
    """What a run stores about its training data, to score new scans.

    Attributes:
        members: Per member name, its embedding reference.
        thresholds: Per member name, the out-of-fold distance threshold.
        intensity: Intensity statistics reference (None when not stored).
        info: The JSON record (thresholds, counts, quantiles).
    """

    members: dict[str, EmbeddingReference] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    intensity: IntensityReference | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        """Write the tensors, then the JSON record."""
        from safetensors.numpy import save_file

        tensors: dict[str, np.ndarray] = {}
        for name, ref in self.members.items():
            tensors |= {f"{name}/mean": ref.mean_, f"{name}/components": ref.components_,
                        f"{name}/variances": ref.variances_}
        if self.intensity is not None:
            tensors |= {"intensity/median": self.intensity.median_,
                        "intensity/scale": self.intensity.scale_}
        # float32 on disk: a classical member's components are 10 x (thousands of) features
        save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
                  str(folder / REFERENCE_TENSORS))
        write_json(folder / REFERENCE_JSON, self.info)


def load_reference(folder: Path) -> OodReference | None:
    """The run's reference, or None when it has none (a run trained before it existed).

    Raises:
        InputError: the files are damaged or do not match each other.
    """
    path = folder / REFERENCE_JSON
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    info = parse_json_file(path, "retrain, or delete both ood_reference files")
    try:
        tensors = {k: v.astype(np.float64)
                   for k, v in load_file(str(folder / REFERENCE_TENSORS)).items()}
        ref = OodReference(info=info)
        for name, rec in info["members"].items():
            ref.members[name] = EmbeddingReference(
                int(rec["rank"]), tensors[f"{name}/mean"], tensors[f"{name}/components"],
                tensors[f"{name}/variances"], float(rec["residual_variance"]),
                str(rec.get("metric", "whitened")))
            ref.thresholds[name] = float(rec["threshold"])
        if info.get("intensity"):
            ref.intensity = IntensityReference(tensors["intensity/median"],
                                               tensors["intensity/scale"])
    except Exception as exc:  # missing, cut or foreign tensors; missing JSON fields
        raise InputError(f"{path}: the out-of-distribution reference is damaged "
                         f"({type(exc).__name__}: {exc}). Fix: retrain, or delete "
                         f"{REFERENCE_JSON} and {REFERENCE_TENSORS} (predictions then have "
                         "no OOD scores).") from exc
    return ref


def has_features(model: Any) -> bool:
    """Whether a member gives an embedding: ``forward_features`` (network members) or
    ``embed_table`` (classical members: their standardised features)."""
    return callable(getattr(model, "embed_table", None)) or (
        callable(getattr(model, "forward_features", None)) and hasattr(model, "num_features"))


def embeddings(model: Any, data: Any, batch_size: int = 8,
               device: str | None = None) -> np.ndarray:
    """(N, F) embeddings of the rows of `data` by a member with :func:`has_features`."""
    if callable(getattr(model, "embed_table", None)):
        return np.asarray(model.embed_table(data), dtype=np.float64)
    from brainage.data.datasets import ScanDataset
    from brainage.inference.engine import predict_features

    return predict_features(model, ScanDataset.from_table(data), batch_size, device)


def table_intensity(data: Any) -> np.ndarray:
    """:func:`intensity_stats` of every row's ``array_path`` (path or array): ``(N, S)``."""
    from brainage.data.datasets import load_array

    return np.stack([intensity_stats(load_array(item)) for item in data["array_path"]])


def score(reference: OodReference, models: dict[str, Any], data: Any, batch_size: int = 8,
          device: str | None = None) -> dict[str, np.ndarray]:
    """Per-scan scores of the rows of `data` (``array_path``) against `reference`.

    Args:
        reference: The run's reference.
        models: Member name -> model (the stage-1 members of the run).
        data: Rows with ``array_path``.

    Returns:
        ``embedding_distance`` and ``intensity_z`` ``(N,)`` arrays (NaN when the reference
        lacks that part, or no member matches).
    """
    n = len(data)
    ratios = []
    for name, model in models.items():
        if name in reference.members and has_features(model):
            z = embeddings(model, data, batch_size, device)
            ratios.append(reference.members[name].distance(z) / reference.thresholds[name])
    emb = np.mean(ratios, axis=0) if ratios else np.full(n, np.nan)
    inten = reference.intensity.z(table_intensity(data)) if reference.intensity is not None \
        else np.full(n, np.nan)
    return {"embedding_distance": emb, "intensity_z": inten}


def flags(scores: dict[str, np.ndarray]) -> list[list[str]]:
    """The OOD flags of each scan from its scores (NaN scores raise none)."""
    emb, inten = scores["embedding_distance"], scores["intensity_z"]
    return [[name for name, hit in (("embedding_distance", e > 1.0),
                                    ("intensity_unusual", z > INTENSITY_Z_MAX)) if hit]
            for e, z in zip(emb, inten, strict=True)]


def add_columns(out: Any, data: Any, reference: OodReference | None, models: dict[str, Any],
                batch_size: int = 8, device: str | None = None) -> None:
    """Add ``embedding_distance`` and ``intensity_z`` (with a reference) and ``ood_flags``
    (every warning: the ``ood`` age flag, the QC flags, the flags of the scores) to `out`."""
    import pandas as pd

    found: list[list[str]] = [[] for _ in range(len(out))]
    if reference is not None and len(out):
        scores = score(reference, models, data, batch_size, device)
        out["embedding_distance"] = scores["embedding_distance"]
        out["intensity_z"] = scores["intensity_z"]
        found = flags(scores)
    texts = [";".join([a for a in (age, qc) if isinstance(a, str) and a] + more) or None
             for age, qc, more in zip(out["ood"], out["qc_flags"], found, strict=True)]
    out["ood_flags"] = pd.Series(texts, index=out.index, dtype="string")


def describe(reference: OodReference | None, training_range: list[float]) -> dict[str, Any]:
    """The thresholds the OOD columns used, for the predictions sidecar."""
    intensity = (reference.info.get("intensity") or {}) if reference is not None else {}
    return {"training_range": list(training_range),
            "reference": None if reference is None else REFERENCE_JSON,
            "embedding_flag_above": None if reference is None else 1.0,
            "member_thresholds": {} if reference is None else dict(reference.thresholds),
            "intensity_z_threshold": intensity.get("z_threshold")}
