"""Moved to :mod:`brainage.estimators.stacking` (training fits the combiner it stores).

Kept only for ``inference/predictor.py``, which imports these names from here and was being
edited elsewhere when the module moved; delete this file once it imports
:mod:`brainage.estimators.stacking`.
"""

from brainage.estimators.stacking import STACK_JSON, combine

__all__ = ["STACK_JSON", "combine"]
