"""Multi-view augmentation for contrastive pretraining (torchio transforms).

Barbano et al. (ISBI 2023) trained with two *identical* views (no augmentation), so the
``none`` spec reproduces the paper; the other kinds are improvements to measure:

* ``crop``: random crop then zero pad back to the input shape (a random shift that also
  drops up to ``fraction`` of each axis at the borders);
* ``affine``: small random rotation (``degrees``), scaling (``scale``) and translation
  (``translation`` voxels), linear interpolation;
* ``flip``: flip each of ``axes`` with probability 1/2 (axis 0 is left-right in RAS data);
* ``intensity``: random gamma (``log_gamma``), smooth bias field (``bias``) and Gaussian
  noise (``noise``, in image units: sized for intensities of order 1);
* ``cutout``: random erasing of one box, ``size`` of each axis, filled with ``value``
  (last, so the box stays sharp).

Kinds always run in the order above, whatever the order they are given in, so a spec means
one pipeline. A spec is ``"none"``, a name, names joined by ``+`` (``"crop+cutout"``), a list
of names, or a mapping from names to keyword overrides (``{"cutout": {"size": 0.3}}``; every
kind also takes torchio's ``p``, the probability it runs).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torchio as tio
from torch import Tensor
from torchio.transforms.augmentation import RandomTransform

from brainage.errors import InputError

#: The kinds, in the order they are applied.
KINDS: tuple[str, ...] = ("crop", "affine", "flip", "intensity", "cutout")
#: Default settings of each kind.
DEFAULTS: dict[str, dict[str, Any]] = {
    "crop": {"fraction": 0.1},
    "cutout": {"size": 0.25, "value": 0.0},
    "flip": {"axes": (0,)},
    "affine": {"degrees": 5.0, "scale": 0.05, "translation": 3.0},
    "intensity": {"log_gamma": 0.2, "bias": 0.2, "noise": 0.02},
}
Spec = str | Sequence[str] | Mapping[str, Mapping[str, Any]]


def _check_fraction(name: str, value: float) -> float:
    if not 0 <= value < 1:
        raise InputError(f"view {name} must be a fraction in [0, 1), got {value!r}. "
                            "Fix: e.g. 0.1.")
    return float(value)


class RandomCropPad(RandomTransform, tio.SpatialTransform):
    """Crop a random box and zero pad back to the original shape, per axis independently.

    Args:
        fraction: At most this fraction of each axis is cropped away (then padded back at a
            random side), so content moves by up to ``fraction`` of the axis.
    """

    def __init__(self, fraction: float = 0.1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fraction = _check_fraction("crop fraction", fraction)
        self.args_names = ["fraction"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        keep, pads = [], []
        for n in subject.spatial_shape:
            margin = int(torch.randint(0, int(self.fraction * n) + 1, ()).item())
            start = int(torch.randint(0, margin + 1, ()).item())
            before = int(torch.randint(0, margin + 1, ()).item())
            keep.append(slice(start, start + n - margin))
            pads.append((before, margin - before))
        flat_pads = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
        for image in self.get_images(subject):
            cropped = image.data[(slice(None), *keep)]  # (C, d, h, w)
            image.set_data(torch.nn.functional.pad(cropped, flat_pads))  # (C, D, H, W)
        return subject


class RandomCutout(RandomTransform, tio.IntensityTransform):
    """Erase one random box (intensity images only), ``size`` of each axis, to ``value``."""

    def __init__(self, size: float = 0.25, value: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.size, self.value = _check_fraction("cutout size", size), float(value)
        self.args_names = ["size", "value"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        box = []
        for n in subject.spatial_shape:
            side = max(1, round(self.size * n)) if self.size > 0 else 0
            start = int(torch.randint(0, n - side + 1, ()).item())
            box.append(slice(start, start + side))
        for image in self.get_images(subject):
            data = image.data.clone()
            data[(slice(None), *box)] = self.value
            image.set_data(data)
        return subject


def parse_spec(spec: Spec) -> dict[str, dict[str, Any]]:
    """``{kind: settings}`` from a spec (``{}`` for ``"none"``), defaults filled in.

    Raises:
        BrainAgeError: an unknown kind or setting.
    """
    if isinstance(spec, str):
        names = [] if spec.strip() in ("", "none") else [s.strip() for s in spec.split("+")]
        spec = {name: {} for name in names}
    elif not isinstance(spec, Mapping):
        spec = {name: {} for name in spec if name != "none"}
    parsed = {}
    for name, overrides in spec.items():
        if name not in DEFAULTS:
            close = difflib.get_close_matches(str(name), KINDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(f"unknown view augmentation {name!r}; expected 'none' or "
                                f"some of {', '.join(KINDS)}.{hint}")
        unknown = sorted(set(overrides) - set(DEFAULTS[name]) - {"p"})
        if unknown:
            raise InputError(f"view augmentation {name!r}: unknown setting(s) {unknown}; "
                                f"expected some of {sorted(DEFAULTS[name]) + ['p']}.")
        parsed[name] = {**DEFAULTS[name], **overrides}
    return parsed


def _build(name: str, s: dict[str, Any]) -> list[tio.Transform]:
    p = {"p": s["p"]} if "p" in s else {}
    if name == "crop":
        return [RandomCropPad(s["fraction"], **p)]
    if name == "cutout":
        return [RandomCutout(s["size"], s["value"], **p)]
    if name == "flip":
        return [tio.RandomFlip(axes=tuple(s["axes"]), flip_probability=0.5, **p)]
    if name == "affine":
        return [tio.RandomAffine(scales=s["scale"], degrees=s["degrees"],
                                 translation=s["translation"], image_interpolation="linear",
                                 default_pad_value=0.0, **p)]
    return [tio.RandomGamma(log_gamma=s["log_gamma"], **p),
            tio.RandomBiasField(coefficients=s["bias"], **p),
            tio.RandomNoise(std=(0.0, s["noise"]), **p)]


def view_transform(spec: Spec = "none") -> tio.Compose:
    """The torchio transform of one view: ``(C, D, H, W)`` -> ``(C, D, H, W)``.

    Args:
        spec: See the module notes; ``"none"`` is the identity (the paper's views).
    """
    parsed = parse_spec(spec)
    return tio.Compose([t for name in KINDS if name in parsed for t in _build(name, parsed[name])])


def _as_image(image: Any) -> Tensor:
    tensor = torch.as_tensor(np.asarray(image) if not isinstance(image, Tensor) else image)
    if tensor.ndim != 4:
        raise InputError(f"a view needs one (C, D, H, W) image, got shape "
                            f"{tuple(tensor.shape)}. Fix: add the channel axis, e.g. "
                            "image[None] for a (D, H, W) volume.")
    return tensor.float()


def make_views(image: Any, spec: Spec = "none", views: int = 2, seed: int | None = None,
               per_view: Sequence[Spec] | None = None) -> Tensor:
    """``views`` augmented copies of one image: ``(C, D, H, W)`` -> ``(V, C, D, H, W)``.

    Args:
        image: The image (tensor or array).
        spec: The spec of every view (see the module notes).
        views: Number of views V.
        seed: Seed of the draws: the same seed gives the same views, and the global torch
            generator is left untouched. None draws from (and advances) the global
            generator, e.g. in a DataLoader worker seeded per epoch.
        per_view: One spec per view instead of `spec`, e.g. ``["none", "crop+cutout"]``
            to keep the first view clean.

    Raises:
        BrainAgeError: not one 4-D image, a bad spec, or ``per_view`` of another length.
    """
    if not (isinstance(views, int) and views >= 1):
        raise InputError(f"views must be an integer >= 1, got {views!r}. Fix: e.g. 2.")
    if per_view is not None and len(per_view) != views:
        raise InputError(f"per_view has {len(per_view)} specs for {views} views. "
                            "Fix: give one spec per view.")
    transforms = [view_transform(s) for s in (per_view if per_view is not None else
                                              [spec] * views)]
    x = _as_image(image)
    if seed is None:
        return torch.stack([t(x.clone()) for t in transforms])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.stack([t(x.clone()) for t in transforms])
