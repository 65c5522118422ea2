"""Moved to :mod:`brainage.data.predictions` (training and prediction write the table too).

Kept only for ``bidsapp/`` and ``benchmarks/bench_ixi_cv.py``, which import these names from
here and were being edited elsewhere when the module moved; delete this file once they
import :mod:`brainage.data.predictions`.
"""

from brainage.data.predictions import read_predictions, write_predictions

__all__ = ["read_predictions", "write_predictions"]
