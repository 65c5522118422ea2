"""Moved to :mod:`brainage.drawing` (training and synthesis draw figures of volumes too).

Kept only for ``synthesis/change_map_io.py``, which imports this name from here and was
being edited elsewhere when the module moved; delete this file (and its ``ignore_imports``
entry in ``pyproject.toml``) once it imports :mod:`brainage.drawing`.
"""

from brainage.drawing import change_map_figure

__all__ = ["change_map_figure"]
