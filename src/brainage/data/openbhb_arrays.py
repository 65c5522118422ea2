"""Moved to :mod:`brainage.preprocessing.openbhb_arrays` (it builds a prepared cohort).

Kept only for ``inference/predictor.py``, which imports these two names from here and was
being edited elsewhere when the module moved; delete this file (and its ``ignore_imports``
entry in ``pyproject.toml``) once that import names the new module.
"""

from brainage.preprocessing.openbhb_arrays import is_openbhb, open_like

__all__ = ["is_openbhb", "open_like"]
