"""Moved to :mod:`brainage.models.engine` (training predicts its held-out folds with it).

Kept only for ``inference/ood.py`` and ``inference/predictor.py``, which import these names
from here and were being edited elsewhere when the module moved; delete this file once they
import :mod:`brainage.models.engine`.
"""

from brainage.models.engine import default_device, predict_dataset, predict_features

__all__ = ["default_device", "predict_dataset", "predict_features"]
