"""Classical brain-age models: tissue-map features + scikit-learn regressors.

Voxel-based morphometry features (smoothed, pooled, optionally Jacobian-modulated GM / WM /
CSF maps from ``brainage prepare --tissues``) and global tissue volumes feed ridge, kernel
ridge or Gaussian-process regression, as in the field's segmentation-based models
(brainageR: grey/white maps + a Gaussian process). Fitted models are stored as arrays
(safetensors) + JSON, never pickles, and are members of a run folder like the networks:
same splits, ``predict``, intervals and report.
"""

from brainage.classical.features import FeatureSpec
from brainage.classical.model import ClassicalModel, is_classical

__all__ = ["ClassicalModel", "FeatureSpec", "is_classical"]
