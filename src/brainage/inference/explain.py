"""Explanation maps for one scan and a finished run: ``explain_scan(run, scan, out)``.

The run's models are wrapped as one differentiable function (fold models averaged; a
cascade's stage 2 fed the stage-1 average, as the Predictor does), the scan is prepared
with the run's own preprocessing spec (or given already prepared), and a voxelwise map
(:mod:`.saliency`) is written as BIDS derivatives::

    <out>/sub-<label>/[ses-<label>/]anat/
      <stem>_space-<template>_res-<r>_desc-saliency_T1w.nii.gz   map on the model's grid
      <stem>_space-<template>_res-<r>_desc-saliency_T1w.json     method, prediction, ...
      <stem>_space-T1w_desc-saliency_T1w.nii.gz                   map on the raw scan's grid
      <stem>_space-T1w_desc-saliency_T1w.json
      <stem>_space-<template>_res-<r>_desc-saliency_regions.tsv  tissue / region summary
      <stem>_space-<template>_res-<r>_desc-saliency_regions.json column descriptions

``<stem>`` is ``sub-<label>[_ses-<label>][_run-<n>]``. The native map needs the raw scan
(a prepared array has no transform back). Every file is written atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from brainage import __version__
from brainage.errors import InputError
from brainage.inference import explain_io
from brainage.inference.saliency import integrated_gradients, occlusion, predict_one, smoothgrad
from brainage.models.base import BrainAgeModel

METHODS = ("ig", "occlusion", "smoothgrad")


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
class LoadedRun:
    """What explaining needs from a run folder."""

    run_dir: Path
    function: RunFunction
    spec: Any


@dataclass
class Explanation:
    """Result of :func:`explain_scan`.

    Attributes:
        saliency: ``(X, Y, Z)`` map on the run's grid (years per voxel).
        regions: Region summary table (:func:`brainage.inference.regions.region_summary`).
        prediction: The run's (uncorrected) predicted age for the scan.
        files: Written files by role (``template``, ``native``, ``regions``, sidecars).
        info: Everything recorded in the JSON sidecar.
    """

    saliency: np.ndarray
    regions: pd.DataFrame
    prediction: float
    files: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def load_run(run_dir: str | Path, device: str | None = None) -> LoadedRun:
    """Load a finished run folder's models and spec (see :class:`Predictor`)."""
    from brainage.inference.engine import default_device
    from brainage.inference.predictor import Predictor

    pred = Predictor.from_run(run_dir)
    fn = RunFunction(pred.stage1, pred.stage2).eval()
    fn.to(torch.device(device) if device else default_device())
    return LoadedRun(Path(run_dir), fn, pred.spec)


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
                        f"{', '.join(METHODS)}. Fix: pick one of those.")


def _method_info(method: str, steps: int, patch: int, stride: int | None) -> dict[str, Any]:
    if method == "ig":
        return {"Method": "integrated_gradients", "Baseline": "zeros (background / brain mean "
                "of the normalised input)", "Steps": steps, "Quadrature": "Gauss-Legendre"}
    if method == "occlusion":
        return {"Method": "occlusion", "Baseline": 0.0, "PatchVoxels": patch,
                "StrideVoxels": stride or patch}
    return {"Method": "smoothgrad_times_input", "Samples": steps, "NoiseFraction": 0.15}


def explain_scan(run: str | Path | LoadedRun, scan: str | Path | np.ndarray,
                 out_dir: str | Path, method: str = "ig", *, steps: int = 32, batch: int = 4,
                 patch: int = 8, stride: int | None = None, sex: str | None = None,
                 subject: str | None = None, session: str | None = None,
                 device: str | None = None, dicom_series: str | None = None) -> Explanation:
    """Explain the run's prediction for one scan and write the maps and region table.

    Args:
        run: Run folder (or a :class:`LoadedRun`, to explain many scans with one load).
        scan: Raw NIfTI or DICOM folder (prepared with the run's spec), a prepared ``.npy``
            array, or an in-memory ``(X, Y, Z)`` array on the run's grid.
        out_dir: Derivatives folder to write into.
        method: ``ig`` (integrated gradients), ``occlusion`` or ``smoothgrad``.
        steps: Path points (IG) or noisy samples (SmoothGrad).
        batch: Volumes per forward/backward pass (memory).
        patch: Occlusion patch size in grid voxels.
        stride: Occlusion stride (default: the patch size).
        sex: ``"F"``/``"M"`` for models that take sex (default unknown, as in prediction).
        subject: Participant label for the file names (default: from the file name).
        session: Session label (default: from the file name).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        dicom_series: SeriesNumber or UID of a DICOM folder's series (default: its T1w one).

    Raises:
        BrainAgeError: missing or unfinished run, unreadable scan, an array not on the
            run's grid, or an unknown method.
    """
    if method not in METHODS:
        raise InputError(f"unknown explanation method {method!r}; expected one of "
                            f"{', '.join(METHODS)}. Fix: pick one of those.")
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device)
    inp = explain_io.read_input(scan, loaded.spec, subject, session, dicom_series)
    sal = compute_saliency(loaded.function, inp.array, method, steps=steps, batch=batch,
                           patch=patch, stride=stride, sex=sex)
    info = _record(loaded, inp, sal, method, steps, patch, stride, sex)
    files, regions = explain_io.write_outputs(Path(out_dir), inp, loaded.spec, sal, info)
    return Explanation(sal, regions, info["PredictedAge"], files, info)


def _record(loaded: LoadedRun, inp: explain_io.ScanInput, sal: np.ndarray, method: str,
            steps: int, patch: int, stride: int | None, sex: str | None) -> dict[str, Any]:
    """The JSON sidecar: method, prediction, completeness and provenance."""
    from brainage.data.datasets import sex_codes

    code = sex_codes([sex])[0]
    pred = predict_one(loaded.function, inp.array, sex=code)
    base = predict_one(loaded.function, np.zeros_like(inp.array), sex=code)
    info: dict[str, Any] = {
        **_method_info(method, steps, patch, stride),
        "Units": "years per voxel (signed; > 0 raises the predicted age)",
        "PredictedAge": round(pred, 4), "BaselinePredictedAge": round(base, 4),
        "AttributionSum": round(float(sal.sum()), 4),
        "Run": str(loaded.run_dir), "PreprocessingSpecHash": loaded.spec.hash,
        "Sources": [inp.source], "Sex": sex, "GeneratedBy": f"brainage {__version__}",
    }
    if method == "ig":  # completeness: the map sums to f(x) - f(baseline)
        info["CompletenessError"] = round(float(sal.sum()) - (pred - base), 4)
    return info


def explain_scans(run_dir: str | Path, scans: list[str | Path], out_dir: str | Path,
                  **kwargs: Any) -> list[Explanation]:
    """:func:`explain_scan` for several scans with one run load (``device`` in kwargs)."""
    loaded = load_run(run_dir, kwargs.pop("device", None))
    return [explain_scan(loaded, s, out_dir, **kwargs) for s in scans]

