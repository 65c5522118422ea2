"""Networks behind one registry and one interface.

>>> from brainage.models import create_model, list_models
>>> list_models()  # doctest: +SKIP
['alexnet3d', 'densenet121_3d', 'resnet18_3d', 'scaledense', 'sfcn', 'tsan_stage2', 'vgg3d']
>>> list_models(kind="generator"), list_models(kind="critic")  # doctest: +SKIP
(['tgbgan_generator'], ['tgbgan_critic'])

Every model implements :class:`BrainAgeModel` (``forward_features``, ``forward_head``,
``reset_head``, ``num_features``); :func:`save_model` / :func:`load_model` write and read
``weights.safetensors`` + ``model.json``. Registry entries have a ``kind``: ``"age"`` (the
default of :func:`list_models`), ``"generator"`` or ``"critic"`` (TGB-GAN's networks).
"""

from brainage.models import (  # noqa: F401 (register)
    alexnet3d,
    densenet3d,
    resnet3d,
    sfcn,
    tgbgan,
    tsan,
    vgg3d,
)
from brainage.models.base import BrainAgeModel
from brainage.models.io import count_parameters, load_model, save_model
from brainage.models.registry import (
    KINDS,
    ModelInfo,
    check_kind,
    create_model,
    list_models,
    model_info,
    register_model,
)
from brainage.models.tsan import discretize_age

__all__ = [
    "KINDS",
    "BrainAgeModel",
    "ModelInfo",
    "check_kind",
    "count_parameters",
    "create_model",
    "discretize_age",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "save_model",
]
