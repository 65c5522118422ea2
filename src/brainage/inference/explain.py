"""Explanation maps for one scan and a finished run: ``explain_scan(run, scan, out)``.

The run's members are explained as the Predictor predicts with them
(:mod:`.explain_parts`): network fold models averaged as one differentiable function (a
cascade's stage 2 fed the stage-1 average) and explained by a saliency method
(:mod:`.saliency`); linear classical members (ridge, gpr) by their exact linear
contributions (:mod:`brainage.classical.explain`); a stack by the weighted sum of its
members' maps. The scan is prepared with the run's own preprocessing spec (or given
already prepared), and the map is written as BIDS derivatives::

    <out>/sub-<label>/[ses-<label>/]anat/
      <stem>_space-<template>_res-<r>_desc-saliency_T1w.nii.gz   map on the model's grid
      <stem>_space-<template>_res-<r>_desc-saliency_T1w.json     method, prediction, ...
      <stem>_space-T1w_desc-saliency_T1w.nii.gz                   map on the raw scan's grid
      <stem>_space-T1w_desc-saliency_T1w.json
      <stem>_space-<template>_res-<r>_desc-saliency_regions.tsv  tissue / region summary
      <stem>_space-<template>_res-<r>_desc-saliency_regions.json column descriptions

``<stem>`` is ``sub-<label>[_ses-<label>][_run-<n>]``. The native map needs the raw scan
(a prepared array has no transform back). Every file is written atomically, and only after
the map is computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.errors import InputError
from brainage.inference import explain_io
from brainage.inference.explain_parts import (
    METHODS,
    RunFunction,
    Settings,
    build_explainer,
    compute_saliency,
)

__all__ = ["METHODS", "Explanation", "FailedScan", "LoadedRun", "RunFunction", "compute_saliency",
           "explain_scan", "explain_scans", "load_run"]


@dataclass
class LoadedRun:
    """What explaining needs from a run folder.

    Attributes:
        run_dir: The run folder.
        explainer: Its members as an explainer (:mod:`.explain_parts`).
        spec: The run's preprocessing spec.
    """

    run_dir: Path
    explainer: Any
    spec: Any

    @property
    def function(self) -> RunFunction | None:
        """The differentiable function of a network run (None for classical runs, stacks)."""
        return getattr(self.explainer, "function", None)


@dataclass
class Explanation:
    """Result of :func:`explain_scan`.

    Attributes:
        saliency: ``(X, Y, Z)`` map on the run's grid (years per voxel).
        regions: Region summary table (:func:`brainage.inference.regions.region_summary`).
        prediction: The run's (uncorrected) predicted age for the scan.
        files: Written files by role (``template``, ``native``, ``regions``, sidecars).
        info: Everything recorded in the JSON sidecar.
        baseline: The prediction at the method's baseline.
        volumes: Contributions of global volume features (years; classical models only).
    """

    saliency: np.ndarray
    regions: pd.DataFrame
    prediction: float
    files: dict[str, Path] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    baseline: float | None = None
    volumes: dict[str, float] = field(default_factory=dict)


def load_run(run_dir: str | Path, device: str | None = None) -> LoadedRun:
    """Load a finished run folder's members and spec (see :class:`Predictor`).

    Raises:
        BrainAgeError: missing or unfinished run, or members that cannot be explained
            (kernel ridge; see :func:`.explain_parts.build_explainer`).
    """
    from brainage.inference.predictor import Predictor

    pred = Predictor.from_run(run_dir)
    return LoadedRun(Path(run_dir), build_explainer(pred, device), pred.spec)


def check_method(method: str) -> None:
    """Refuse an unknown method name."""
    if method not in METHODS:
        raise InputError(f"unknown explanation method {method!r}; expected one of "
                         f"{', '.join(METHODS)}. Fix: pick one of those (auto: ig for "
                         "networks, linear contributions for classical models).")


def explain_scan(run: str | Path | LoadedRun, scan: str | Path | np.ndarray,
                 out_dir: str | Path, method: str = "auto", *, steps: int = 32,
                 batch: int = 4, patch: int = 8, stride: int | None = None,
                 sex: str | None = None, subject: str | None = None,
                 session: str | None = None, device: str | None = None,
                 dicom_series: str | None = None,
                 tissues: str | Path | np.ndarray | None = None,
                 affine_det: float | None = None) -> Explanation:
    """Explain the run's prediction for one scan and write the maps and region table.

    Args:
        run: Run folder (or a :class:`LoadedRun`, to explain many scans with one load).
        scan: Raw NIfTI or DICOM folder (prepared with the run's spec), a prepared ``.npy``
            array, or an in-memory ``(X, Y, Z)`` array on the run's grid.
        out_dir: Derivatives folder to write into.
        method, steps, batch, patch, stride, sex, device, dicom_series: as in
            :func:`brainage.explain`.
        subject: Participant label for the file names (default: from the file name).
        session: Session label (default: from the file name).
        tissues: The scan's ``(C, X, Y, Z)`` tissue maps (array or ``.npy``) for classical
            models, when `scan` is an array or a ``.npy`` outside a prepared folder.
        affine_det: The scan's affine determinant (QC ``affine_det``), with `tissues`.

    Raises:
        BrainAgeError: missing or unfinished run, unreadable scan, an array not on the
            run's grid, an unknown method or one the run's members cannot use, or a
            classical model without the scan's tissue maps.
    """
    check_method(method)
    loaded = run if isinstance(run, LoadedRun) else load_run(run, device)
    inp = explain_io.read_input(scan, loaded.spec, subject, session, dicom_series,
                                tissues=tissues, affine_det=affine_det)
    part = loaded.explainer.explain(inp, Settings(method, steps, batch, patch, stride, sex))
    info = _record(loaded, inp, part, sex)
    sal = np.asarray(part.map, dtype=np.float32)
    files, regions = explain_io.write_outputs(Path(out_dir), inp, loaded.spec, sal, info)
    return Explanation(sal, regions, float(part.prediction), files, info,
                       float(part.baseline), dict(part.volumes))


def _record(loaded: LoadedRun, inp: explain_io.ScanInput, part: Any,
            sex: str | None) -> dict[str, Any]:
    """The JSON sidecar: method, prediction, completeness and provenance."""
    total = float(np.sum(part.map))
    info: dict[str, Any] = {
        **part.info,
        "Units": "years per voxel (signed; > 0 raises the predicted age)",
        "PredictedAge": round(float(part.prediction), 4),
        "BaselinePredictedAge": round(float(part.baseline), 4),
        "AttributionSum": round(total, 4),
    }
    if part.volumes:
        info["VolumeContributions"] = {k: round(v, 4) for k, v in part.volumes.items()}
        info["VolumeContributionsUnits"] = "years (global volume features, not in the map)"
    info.update({"Run": str(loaded.run_dir), "PreprocessingSpecHash": loaded.spec.hash,
                 "Sources": [inp.source], "Sex": sex, "GeneratedBy": f"brainage {__version__}"})
    if part.complete:  # completeness: map (+ volumes) sums to f(x) - f(baseline)
        info["CompletenessError"] = round(
            total + sum(part.volumes.values()) - (part.prediction - part.baseline), 4)
    return info


@dataclass
class FailedScan:
    """A scan :func:`explain_scans` could not explain (the others were).

    Attributes:
        scan: The input as given.
        error: Why, in one line.
    """

    scan: str
    error: str


def explain_scans(run_dir: str | Path, scans: list[str | Path], out_dir: str | Path, *,
                  jobs: int | None = 1, progress: Any = False, threads: int | None = None,
                  **kwargs: Any) -> list[Explanation | FailedScan]:
    """:func:`explain_scan` for several scans, the run loaded once (and sent once to each
    worker process).

    Args:
        jobs: Worker processes (None: every core; :mod:`brainage.parallel`).
        progress: False (quiet), True (a bar or log lines, and a summary line, on stderr)
            or a callable ``fn(done, total)`` (:mod:`brainage.progress`).
        threads: Torch threads per worker (default: cores / jobs).
        **kwargs: Options of :func:`explain_scan` (``method``, ``steps``, ``device``, ...).

    Returns:
        One entry per scan, in input order: its :class:`Explanation`, or a
        :class:`FailedScan` with the reason (the other scans go on).

    Raises:
        BrainAgeError: bad run or method (before any scan), or no scan could be explained.
    """
    from brainage.errors import BrainAgeError
    from brainage.parallel import identity, resolve_jobs, run_tasks
    from brainage.progress import Progress

    check_method(kwargs.get("method", "auto"))
    loaded = load_run(run_dir, kwargs.pop("device", None))
    tasks = [str(s) for s in scans]
    results: list[Explanation | FailedScan | None] = [None] * len(tasks)
    bar = Progress(len(tasks), "explain", progress)
    for i, result in run_tasks(_explain_task, tasks, jobs=resolve_jobs(jobs, len(tasks)),
                               setup=identity, setup_args=((loaded, out_dir, kwargs),),
                               threads=threads, on_crash=_crashed):
        results[i] = result
        bar.update("failed" if isinstance(result, FailedScan) else "done")
    bar.close()
    failed = [r for r in results if isinstance(r, FailedScan)]
    if failed and len(failed) == len(results):
        raise BrainAgeError("no scan could be explained: " + "; ".join(
            f"{f.scan}: {f.error}" for f in failed))
    return [r for r in results if r is not None]


def _explain_task(state: tuple[LoadedRun, str | Path, dict[str, Any]], scan: str
                  ) -> Explanation | FailedScan:
    from brainage.errors import BrainAgeError
    from brainage.preprocessing.workers import error_text

    loaded, out_dir, kwargs = state
    try:
        return explain_scan(loaded, scan, out_dir, **kwargs)
    except BrainAgeError as exc:  # this scan's problem: named, the others go on
        return FailedScan(scan, error_text(exc))


def _crashed(scan: str, exc: BaseException) -> FailedScan:
    return FailedScan(scan, f"worker process failed ({type(exc).__name__}: {exc}); rerun "
                            "to retry")
