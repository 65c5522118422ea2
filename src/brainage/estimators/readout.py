"""The linear age read-out of a probed representation, stored as arrays + JSON (no pickle).

``brainage probe`` fits the OpenBHB challenge's age probe (ridge regression, penalty by
5-fold grid search; :class:`brainage.evaluation.probes.AgeProbe`) on a run's training
subjects and keeps the fitted ridge in the run, so that ``brainage predict`` gives
``age = x @ coef + intercept`` for the representation ``x`` of a new scan. The challenge
does not standardise the features; a read-out fitted with a scaler stores its mean and
scale too and applies them first.

Files in the member folder: ``age_probe.safetensors`` (``coef`` and, with a scaler,
``mean`` and ``scale``, float64) and ``age_probe.json`` (alpha, intercept, sizes, anything
recorded about the fit), written last.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from brainage.errors import InputError, NotFoundError
from brainage.estimators.representation import ProbeNotFittedError, check_representation
from brainage.io import atomic_path, parse_json_file, write_json

WEIGHTS = "age_probe.safetensors"
CONFIG = "age_probe.json"
FORMAT = "brainage-age-readout"


class RidgeReadout(BaseEstimator):
    """``age = ((x - mean_) / scale_) @ coef_ + intercept_`` (no scaling when ``mean_`` is None).

    Args:
        alpha: Ridge penalty used by :meth:`fit` (a read-out built by :meth:`from_probe`
            takes the grid search's choice).

    Attributes:
        coef_: ``(F,)`` coefficients.
        intercept_: Intercept (years).
        alpha_: The penalty of the fit.
        mean_, scale_: ``(F,)`` standardisation, or None.
        n_features_in_: F.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, x: Any, age: Any) -> RidgeReadout:
        """Plain ridge regression with ``alpha`` on ``(N, F)`` and ``(N,)``; returns self."""
        from sklearn.linear_model import Ridge

        x = check_representation(x, "age read-out")
        ridge = Ridge(alpha=self.alpha).fit(x, np.asarray(age, dtype=np.float64))
        return self._set(ridge.coef_, float(ridge.intercept_), float(self.alpha))

    @classmethod
    def from_probe(cls, probe: Any) -> RidgeReadout:
        """The ridge a fitted :class:`~brainage.evaluation.probes.AgeProbe` chose (its best
        penalty, refitted on all of its training subjects by the grid search).

        Duck-typed (``search_.best_estimator_`` and ``best_alpha_``), so that this module,
        which prediction imports, stays below the evaluation layer that fits probes.
        """
        if not hasattr(probe, "search_"):
            raise ProbeNotFittedError("the age probe is not fitted yet. Fix: call fit first.")
        ridge = probe.search_.best_estimator_
        out = cls(alpha=probe.best_alpha_)
        return out._set(ridge.coef_, float(ridge.intercept_), probe.best_alpha_)

    def _set(self, coef: Any, intercept: float, alpha: float,
             mean: Any = None, scale: Any = None) -> RidgeReadout:
        self.coef_ = np.asarray(coef, dtype=np.float64).ravel()
        self.intercept_, self.alpha_ = float(intercept), float(alpha)
        self.mean_ = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale_ = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.n_features_in_ = len(self.coef_)
        return self

    def _check(self, x: Any) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ProbeNotFittedError("this RidgeReadout is not fitted yet. Fix: fit it, "
                                      "build it with from_probe, or load a saved one.")
        x = check_representation(x, "age read-out")
        if x.shape[1] != self.n_features_in_:
            raise InputError(f"age read-out: {x.shape[1]} features, but it was fitted on "
                             f"{self.n_features_in_}. Fix: use the encoder it was fitted on.")
        return x if self.mean_ is None else (x - self.mean_) / self.scale_

    def predict(self, x: Any) -> np.ndarray:
        """Ages ``(N,)`` of ``(N, F)`` representations."""
        return self._check(x) @ self.coef_ + self.intercept_

    def save(self, directory: str | os.PathLike[str], **extra: Any) -> Path:
        """Write the arrays, then ``age_probe.json`` (with `extra`) into `directory`."""
        from safetensors.numpy import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        arrays = {"coef": self.coef_}
        if self.mean_ is not None:
            arrays.update(mean=self.mean_, scale=self.scale_)
        with atomic_path(out / WEIGHTS) as tmp:
            save_file(arrays, str(tmp))
        write_json(out / CONFIG, {"format": FORMAT, "alpha": self.alpha_,
                                  "intercept": self.intercept_,
                                  "n_features": self.n_features_in_,
                                  "scaled": self.mean_ is not None, **extra})
        return out

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> RidgeReadout:
        """Read a saved read-out.

        Raises:
            NotFoundError: nothing saved in `directory`.
            InputError: damaged files.
        """
        from safetensors.numpy import load_file

        folder = Path(directory)
        if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
            raise NotFoundError(f"{folder}: no age read-out ({CONFIG}, {WEIGHTS}). Fix: run "
                                "`brainage probe RUN DATA` to fit it.")
        meta = parse_json_file(folder / CONFIG, "run `brainage probe` again")
        arrays = load_file(str(folder / WEIGHTS))
        try:
            out = cls(alpha=float(meta["alpha"]))
            out._set(arrays["coef"], float(meta["intercept"]), float(meta["alpha"]),
                     arrays.get("mean"), arrays.get("scale"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{folder / CONFIG}: damaged age read-out ({exc!r}). Fix: run "
                             "`brainage probe` again.") from exc
        if out.n_features_in_ != int(meta.get("n_features", -1)):
            raise InputError(f"{folder}: {WEIGHTS} holds {out.n_features_in_} coefficients, "
                             f"{CONFIG} says {meta.get('n_features')}. Fix: probe again.")
        return out


def has_readout(directory: str | os.PathLike[str]) -> bool:
    """True when `directory` holds a saved age read-out."""
    return (Path(directory) / CONFIG).is_file()
