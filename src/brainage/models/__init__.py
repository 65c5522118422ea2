"""Networks behind one registry and one interface.

>>> from brainage.models import create_model, list_models
>>> list_models()  # doctest: +SKIP
['alexnet3d', 'densenet121_3d', 'resnet18_3d', 'scaledense', 'sfcn', 'tsan_stage2']

Every model implements :class:`BrainAgeModel` (``forward_features``, ``forward_head``,
``reset_head``, ``num_features``); :func:`save_model` / :func:`load_model` write and read
``weights.safetensors`` + ``model.json``.
"""

from brainage.models import alexnet3d, densenet3d, resnet3d, sfcn, tsan  # noqa: F401 (register)
from brainage.models.base import BrainAgeModel
from brainage.models.io import count_parameters, load_model, save_model
from brainage.models.registry import (
    ModelInfo,
    create_model,
    list_models,
    model_info,
    register_model,
)
from brainage.models.tsan import discretize_age

__all__ = [
    "BrainAgeModel",
    "ModelInfo",
    "count_parameters",
    "create_model",
    "discretize_age",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "save_model",
]
