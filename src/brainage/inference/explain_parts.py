"""What :mod:`brainage.inference.explain` explains: a run's members as explainers.

* a network run (fold models, a cascade): one differentiable :class:`RunFunction`,
  explained by a saliency method (``ig``, ``occlusion``, ``smoothgrad``);
* a classical run of linear members (ridge, gpr): exact linear contributions
  (:mod:`brainage.classical.explain`); kernel ridge is refused at load;
* a stack: the stack-weighted sum of its members' maps (the combiner is linear in the
  member predictions, so completeness carries over). Classical members always give linear
  contributions; network members need a saliency method. A stack mixing both is explained
  only when the network method is named (``method`` other than ``auto``), because the two
  parts answer different questions (a network's map compares the scan with an all-zero
  input, a classical one with the average training brain).

``method="auto"`` picks ``ig`` for networks and linear contributions for classical models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from brainage.errors import InputError
from brainage.inference.saliency import integrated_gradients, occlusion, predict_one, smoothgrad
from brainage.models.base import BrainAgeModel

SALIENCY = ("ig", "occlusion", "smoothgrad")
LINEAR = "linear"
METHODS = ("auto", *SALIENCY, LINEAR)


class RunFunction(nn.Module):
    """A run's models as one function: image ``(B, 1, D, H, W)`` (+ sex) -> age ``(B,)``.

    Args:
        stage1: Models whose predictions are averaged (one model or the fold models).
        stage2: A cascade's stage-2 models (fed the stage-1 average), or empty.
    """

    def __init__(self, stage1: list[BrainAgeModel], stage2: list[BrainAgeModel]) -> None:
        super().__init__()
        self.stage1 = nn.ModuleList(stage1)
        self.stage2 = nn.ModuleList(stage2)

    def forward(self, x: Tensor, sex: Tensor | None = None) -> Tensor:
        """Predicted age ``(B,)``; unknown sex is the all-zero code, as in prediction."""
        from brainage.models.base import forward_batch

        batch = {"image": x, "sex": sex if sex is not None else x.new_zeros(len(x), 2)}
        s1 = torch.stack([forward_batch(m, batch) for m in self.stage1]).mean(0)  # (B,)
        if len(self.stage2) == 0:
            return s1
        batch["stage1_age"] = s1
        return torch.stack([forward_batch(m, batch) for m in self.stage2]).mean(0)


@dataclass
class Settings:
    """How to explain: the method and its options (see ``explain_scan``)."""

    method: str = "auto"
    steps: int = 32
    batch: int = 4
    patch: int = 8
    stride: int | None = None
    sex: str | None = None


@dataclass
class Part:
    """One explained scan: the map and what its sidecar says.

    Attributes:
        map: ``(X, Y, Z)`` map on the grid (years per voxel).
        prediction: The explained prediction.
        baseline: The prediction at the method's baseline.
        volumes: Contributions of global volume features (years; classical only).
        info: Method description for the sidecar.
        complete: Whether map + volumes sum to prediction - baseline (IG, linear).
    """

    map: np.ndarray
    prediction: float
    baseline: float
    volumes: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    complete: bool = False


def compute_saliency(function: nn.Module, array: np.ndarray, method: str = "ig", *,
                     steps: int = 32, batch: int = 4, patch: int = 8,
                     stride: int | None = None, sex: str | None = None) -> np.ndarray:
    """A ``(X, Y, Z)`` map of `function` for `array` by `method` (ig, occlusion, smoothgrad)."""
    from brainage.data.datasets import sex_codes

    code = torch.from_numpy(sex_codes([sex])[0])  # (2,) one-hot, zeros when unknown
    if method == "ig":
        return integrated_gradients(function, array, steps=steps, batch=batch, sex=code)
    if method == "occlusion":
        return occlusion(function, array, patch=patch, stride=stride, batch=batch, sex=code)
    if method == "smoothgrad":
        return smoothgrad(function, array, samples=steps, batch=batch, sex=code)
    raise InputError(f"unknown explanation method {method!r}; expected one of "
                     f"{', '.join(SALIENCY)}. Fix: pick one of those.")


def method_info(method: str, steps: int, patch: int, stride: int | None) -> dict[str, Any]:
    """The sidecar's description of a saliency method."""
    if method == "ig":
        return {"Method": "integrated_gradients", "Baseline": "zeros (background / brain mean "
                "of the normalised input)", "Steps": steps, "Quadrature": "Gauss-Legendre"}
    if method == "occlusion":
        return {"Method": "occlusion", "Baseline": 0.0, "PatchVoxels": patch,
                "StrideVoxels": stride or patch}
    return {"Method": "smoothgrad_times_input", "Samples": steps, "NoiseFraction": 0.15}


@dataclass
class NetworkExplainer:
    """Network members (fold models, a cascade) explained by a saliency method."""

    function: RunFunction

    def explain(self, inp: Any, s: Settings) -> Part:
        """The saliency map of the scan's model input ``inp.array``."""
        from brainage.data.datasets import sex_codes

        method = "ig" if s.method == "auto" else s.method
        if method not in SALIENCY:
            raise InputError(f"--method {method}: linear contributions exist only for linear "
                             "classical models, and this run (or stack member) is a network. "
                             f"Fix: --method auto or one of {', '.join(SALIENCY)}.")
        sal = compute_saliency(self.function, inp.array, method, steps=s.steps,
                               batch=s.batch, patch=s.patch, stride=s.stride, sex=s.sex)
        code = sex_codes([s.sex])[0]
        pred = predict_one(self.function, inp.array, sex=code)
        base = predict_one(self.function, np.zeros_like(inp.array), sex=code)
        return Part(sal, pred, base, info=method_info(method, s.steps, s.patch, s.stride),
                    complete=method == "ig")


def check_classical_method(method: str) -> None:
    """Refuse a saliency method where only classical members would use it."""
    if method not in ("auto", LINEAR):
        raise InputError(
            f"--method {method} is a saliency method for networks, but this run's members "
            "are classical linear models, explained exactly by their linear contributions. "
            "Fix: --method auto (or linear).")


@dataclass
class ClassicalExplainer:
    """Linear classical fold members explained by their exact contributions."""

    models: list[Any]
    shape: tuple[int, ...]

    def explain(self, inp: Any, s: Settings) -> Part:
        """Linear contributions of the scan's tissue maps ``inp.tissues``."""
        from brainage.classical.explain import describe, explain_models

        check_classical_method(s.method)
        if inp.tissues is None or inp.affine_det is None:
            raise InputError(
                f"{inp.source}: no tissue maps (or no affine_det), which the classical model "
                "needs. Fix: pass the raw scan (prepared with the run's own spec), or a "
                "prepared array of a `brainage prepare --tissues` folder (its "
                "cache/tissues/<scan>.npy and record are found next to it).")
        c = explain_models(self.models, inp.tissues, inp.affine_det, self.shape)
        return Part(c.map, c.prediction, c.baseline, c.volumes, describe(self.models),
                    complete=True)


@dataclass
class StackExplainer:
    """A stack: the weighted sum of its members' explanations (``stack.json``)."""

    members: list[tuple[str, Any]]
    weights: list[float]
    intercept: float

    def explain(self, inp: Any, s: Settings) -> Part:
        """Each member's part, combined with the stack's weights."""
        kinds = {isinstance(e, ClassicalExplainer) for _, e in self.members}
        if kinds == {True, False} and s.method == "auto":
            raise InputError(
                "this stack mixes network and classical members: the classical members are "
                "explained by exact linear contributions (baseline: the average training "
                "brain), the networks by a saliency method with another baseline (an all-zero "
                "input), so their weighted sum mixes two reference points. Fix: name the "
                "network members' method to accept that (--method ig, occlusion or "
                "smoothgrad), or explain the member runs under members/ one by one.")
        if kinds == {True}:
            check_classical_method(s.method)
        parts = []
        for _, explainer in self.members:
            member = Settings(**{**vars(s), "method": LINEAR}) if isinstance(
                explainer, ClassicalExplainer) else s
            parts.append(explainer.explain(inp, member))
        return self.combine(parts)

    def combine(self, parts: list[Part]) -> Part:
        """The stack's part from its members' parts (same order as :attr:`members`)."""
        w = self.weights
        volumes: dict[str, float] = {}
        for wi, p in zip(w, parts, strict=True):
            for name, v in p.volumes.items():
                volumes[name] = volumes.get(name, 0.0) + wi * v
        methods = sorted({p.info["Method"] for p in parts})
        info: dict[str, Any] = {
            **(parts[0].info if len(methods) == 1 else {}), "Method": "+".join(methods),
            "Stack": {
                "Description": "stack-weighted sum of the member maps: map = sum_m w_m "
                               "map_m; prediction = intercept + sum_m w_m prediction_m",
                "Intercept": self.intercept,
                "Members": [{"Name": name, "Weight": wi, "Method": p.info["Method"],
                             "PredictedAge": round(p.prediction, 4),
                             "BaselinePredictedAge": round(p.baseline, 4),
                             "AttributionSum": round(float(p.map.sum()), 4)}
                            for (name, _), wi, p in zip(self.members, w, parts, strict=True)],
            },
        }
        return Part(sum(wi * p.map for wi, p in zip(w, parts, strict=True)),
                    self.intercept + sum(wi * p.prediction for wi, p in zip(w, parts,
                                                                            strict=True)),
                    self.intercept + sum(wi * p.baseline for wi, p in zip(w, parts,
                                                                          strict=True)),
                    volumes, info, complete=all(p.complete for p in parts))


def build_explainer(pred: Any, device: str | None = None) -> Any:
    """The explainer of a loaded :class:`~brainage.inference.predictor.Predictor`.

    Raises:
        InputError: a non-linear classical member (kernel ridge), classical and network
            models in one run, or stack members prepared on another grid.
    """
    from brainage.classical.explain import linear_form
    from brainage.classical.model import ClassicalModel
    from brainage.models.engine import default_device

    if pred.members:
        for m in pred.members:
            if m.spec.hash != pred.spec.hash:
                raise InputError(
                    f"stack member {m.run_dir} was trained on scans prepared with another "
                    f"spec ({m.spec.hash}) than the stack ({pred.spec.hash}); their maps lie "
                    "on different grids and cannot be summed. Fix: explain the member runs "
                    "one by one.")
        assert pred.combiner is not None
        return StackExplainer([(Path(m.run_dir).name, build_explainer(m, device))
                               for m in pred.members],
                              [float(w) for w in pred.combiner["weights"]],
                              float(pred.combiner["intercept"]))
    classical = [isinstance(m, ClassicalModel) for m in (*pred.stage1, *pred.stage2)]
    if any(classical):
        if pred.stage2 or not all(classical):
            raise InputError(f"{pred.run_dir}: a run mixing classical and network models "
                             "(or a classical cascade) cannot be explained.")
        for m in pred.stage1:
            linear_form(m)  # refuses kernel ridge before any scan is read
        return ClassicalExplainer(list(pred.stage1), tuple(pred.spec.grid.shape))
    fn = RunFunction(pred.stage1, pred.stage2).eval()
    fn.to(torch.device(device) if device else default_device())
    return NetworkExplainer(fn)
