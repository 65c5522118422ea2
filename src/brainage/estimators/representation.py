"""What every linear probe or read-out of a learned representation accepts.

A representation is one row of at most 10,000 finite numbers per subject (the OpenBHB
challenge's limit). Shared by the read-out that prediction applies
(:mod:`brainage.estimators.readout`) and the challenge's probes that ``brainage probe`` fits
(:mod:`brainage.evaluation.probes`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from brainage.errors import BrainAgeError

#: The challenge's limit on the representation's dimension.
MAX_FEATURES = 10_000


class ProbeNotFittedError(NotFittedError, BrainAgeError):
    """A probe was used before ``fit``."""


def check_representation(x: Any, where: str = "representation") -> np.ndarray:
    """``x`` as a finite float ``(N, F)`` array with ``1 <= F <= 10,000``.

    Raises:
        BrainAgeError: another shape, non-finite values or too many features.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise BrainAgeError(
            f"{where}: expected a (subjects, features) array, got shape {arr.shape}. "
            "Fix: flatten each subject's representation to one row."
        )
    if arr.shape[1] > MAX_FEATURES:
        raise BrainAgeError(
            f"{where}: {arr.shape[1]:,} features; the OpenBHB challenge allows at most "
            f"{MAX_FEATURES:,}. Fix: probe a smaller layer (e.g. the 128-d projection or the "
            "512-d encoder output) or reduce it (e.g. PCA fitted on the training subjects)."
        )
    if not np.isfinite(arr).all():
        raise BrainAgeError(f"{where}: {int((~np.isfinite(arr)).sum())} non-finite values. "
                            "Fix: check the encoder's outputs for NaN or inf.")
    return arr
