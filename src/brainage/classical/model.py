"""A classical model as a run member: ``model.json`` + ``weights.safetensors`` (arrays).

``model.json`` has ``"family": "classical"``, the estimator name and its numbers, the
feature definition and the tissue channels it expects; the safetensors file holds the
arrays (feature mask, standardisation, coefficients / training features). Nothing is
pickled.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.classical import estimators
from brainage.classical.features import FeatureMaker, FeatureSpec
from brainage.errors import InputError, NotFoundError
from brainage.io import atomic_path, parse_json_file, write_json

WEIGHTS = "weights.safetensors"  # models.io.WEIGHTS
CONFIG = "model.json"  # models.io.CONFIG
FAMILY = "classical"
#: Prefix of the region label arrays in the weights file.
REGION_PREFIX = "region_"


def is_classical(directory: str | Path) -> bool:
    """Whether a member folder holds a classical model (its model.json says so)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("family") == FAMILY
    except (OSError, json.JSONDecodeError):
        return False


@dataclass
class ClassicalModel:
    """Features + a fitted estimator; predicts rows with ``tissue_path`` and ``affine_det``."""

    estimator: str
    fitted: estimators.Fitted
    features: FeatureMaker

    @classmethod
    def fit(cls, name: str, features: FeatureMaker, table: pd.DataFrame,
            seed: int = 0) -> ClassicalModel:
        """Fit on the rows of `table` (they need ``age``)."""
        X = feature_matrix(features, table)
        return cls(name, estimators.fit(name, X, table["age"].to_numpy(), seed), features)

    def predict_table(self, table: pd.DataFrame) -> np.ndarray:
        """(N,) predicted ages of the rows of `table`."""
        return self.predict_features(feature_matrix(self.features, table))

    def predict_features(self, X: np.ndarray) -> np.ndarray:
        """(N,) predicted ages of (N, F) features made by :attr:`features`."""
        return estimators.predict(self.estimator, self.fitted, X)

    def embed(self, X: np.ndarray) -> np.ndarray:
        """(N, F) standardised features (the space the estimator sees; for OOD scores)."""
        return estimators.standardised(self.fitted, X)

    def embed_table(self, table: pd.DataFrame) -> np.ndarray:
        """:meth:`embed` of the features of the rows of `table`."""
        return self.embed(feature_matrix(self.features, table))

    @property
    def config(self) -> dict[str, Any]:
        f = self.features
        return {"format": "brainage-model", "format_version": 1, "family": FAMILY,
                "name": self.estimator, "estimator_params": self.fitted.params,
                "features": f.spec.to_dict(), "channels": list(f.channels),
                "spacing": list(f.spacing), "num_parameters": int(sum(
                    a.size for a in self.fitted.arrays.values())),
                "brainage_version": __version__}

    def save(self, directory: str | Path) -> Path:
        """Write the arrays (safetensors) and ``model.json`` into `directory`, atomically."""
        from safetensors.numpy import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.ascontiguousarray(v, dtype=np.float32)
                  for k, v in self.fitted.arrays.items()}
        arrays["feature_mask"] = self.features.mask.astype(np.uint8)
        for name, labels in self.features.regions.items():
            arrays[f"{REGION_PREFIX}{name}"] = np.ascontiguousarray(labels, dtype=np.uint16)
        with atomic_path(out / WEIGHTS) as tmp:
            save_file(arrays, str(tmp))
        write_json(out / CONFIG, self.config)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> ClassicalModel:
        """Read a member folder written by :meth:`save`."""
        from safetensors.numpy import load_file

        folder = Path(directory)
        if not (folder / WEIGHTS).is_file():
            raise NotFoundError(f"{folder / WEIGHTS}: classical model arrays not found. Fix: "
                                "train the run again (or restore the file).")
        meta = parse_json_file(folder / CONFIG, "train the run again")
        if meta.get("family") != FAMILY:
            raise InputError(f"{folder / CONFIG} is not a classical model.")
        raw = load_file(str(folder / WEIGHTS))
        regions = {k[len(REGION_PREFIX):]: raw.pop(k) for k in list(raw)
                   if k.startswith(REGION_PREFIX)}
        arrays = {k: v.astype(np.float64) for k, v in raw.items()}
        mask = arrays.pop("feature_mask") > 0
        maker = FeatureMaker(FeatureSpec.from_dict(meta["features"]), tuple(meta["channels"]),
                             tuple(meta["spacing"]), mask, regions)
        return cls(str(meta["name"]), estimators.Fitted(arrays, meta["estimator_params"]), maker)


def feature_matrix(features: FeatureMaker, table: pd.DataFrame) -> np.ndarray:
    """(N, F) features of the rows of `table` (``tissue_path``: ``.npy`` paths or arrays,
    ``affine_det``: the template -> native determinant)."""
    ids = table["participant_id"] if "participant_id" in table else pd.Series(range(len(table)))
    for column, what in (("tissue_path", "tissue maps"), ("affine_det", "affine determinant")):
        bad = table[column].isna().to_numpy() if column in table else np.ones(len(table), bool)
        if bad.any():
            raise InputError(
                f"no {what} ({column}) for {list(ids[bad])[:5]}; classical models need the "
                "tissue maps of `brainage prepare` (its default; not --no-tissues). Fix: "
                "prepare the scans again with the run's spec (predict does so for raw scans).")
    rows = []
    maker_key = features.key
    for item, det in zip(table["tissue_path"], table["affine_det"], strict=True):
        key = _cache_key(maker_key, item, float(det))
        row = _FEATURES.get(key) if key is not None else None
        if row is None:
            maps = np.load(item, mmap_mode="r") if isinstance(item, str | Path) else item
            row = features(maps, float(det))
            if key is not None:
                _remember(key, row)
        rows.append(row)
    return np.stack(rows)


#: Features of recently seen tissue files: prediction scores a scan's features twice (age
#: and out-of-distribution), training its members' training scans again for the reference.
_FEATURES: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_FEATURES_MAX = 512


def _cache_key(maker_key: str, item: Any, det: float) -> tuple[Any, ...] | None:
    """(maker, file, size, mtime, determinant) for a tissue file; None for arrays."""
    if not isinstance(item, str | Path):
        return None
    try:
        st = Path(item).stat()
    except OSError:
        return None
    return (maker_key, str(item), st.st_size, st.st_mtime_ns, det)


def _remember(key: tuple[Any, ...], row: np.ndarray) -> None:
    row.setflags(write=False)
    _FEATURES[key] = row
    while len(_FEATURES) > _FEATURES_MAX:
        _FEATURES.popitem(last=False)
