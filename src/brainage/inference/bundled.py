"""Moved to :mod:`brainage.bundled_runs` (fine-tuning resolves ``--init-from bundled`` too).

Kept only for ``cli/predict.py``, ``bidsapp/`` and ``benchmarks/make_bundled_model.py``,
which import names from here and were being edited elsewhere when the module moved; delete
this file once they import :mod:`brainage.bundled_runs`. Names are looked up there at each
import, so a test that patches :mod:`brainage.bundled_runs` patches them here too.
"""

from typing import Any

from brainage import bundled_runs as _moved


def __getattr__(name: str) -> Any:
    return getattr(_moved, name)
