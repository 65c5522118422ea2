"""One scan from raw T1w to a model-ready volume on an MNI152 grid.

conform -> (N4) -> (deepbet) -> affine registration (-> SyN) -> resample once to the grid
-> brain mask -> normalise inside the mask -> (GM/WM/CSF maps) -> QC. :func:`preprocess_image` is the entry
point used at predict time; the cohort runner (:mod:`brainage.preprocessing.runner`)
calls :func:`preprocess` per scan.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from brainage.errors import BrainAgeError, InputError, one_line
from brainage.preprocessing import antsio, qc, registration, skullstrip, steps, tissues
from brainage.preprocessing.spec import PreprocessingSpec

#: Step names in the order they run (keys of ``PreprocessResult.seconds``).
STEP_NAMES = ("load", "n4", "skullstrip", "register", "resample", "normalise", "tissues",
              "qc")


@dataclass
class PreprocessResult:
    """A preprocessed scan.

    Attributes:
        array: (X, Y, Z) float32 normalised intensities on the spec's grid.
        mask: (X, Y, Z) bool brain mask on the grid.
        affine: (4, 4) RAS+ affine of the grid (MNI world coordinates).
        qc: QC record (numbers, facts and flags), JSON-ready.
        native_mask: (X', Y', Z') bool brain mask in the canonical native space.
        native_affine: (4, 4) affine of `native_mask`.
        seconds: Wall-clock seconds per step (STEP_NAMES) and ``total``.
        cpu_seconds: Process CPU seconds (all threads) per step and ``total``.
        tissues: (C, X, Y, Z) float32 tissue maps (``spec.tissue_channels``), or None.
    """

    array: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    qc: dict[str, Any]
    native_mask: np.ndarray
    native_affine: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    tissues: np.ndarray | None = None


class _Timer:
    """Wall-clock and process CPU seconds (all threads) per step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = dict.fromkeys(STEP_NAMES, 0.0)
        self.cpu: dict[str, float] = dict.fromkeys(STEP_NAMES, 0.0)
        self._start = (time.perf_counter(), time.process_time())

    @contextlib.contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds[step] += time.perf_counter() - t0
            self.cpu[step] += time.process_time() - c0

    def total(self) -> tuple[dict[str, float], dict[str, float]]:
        wall = {k: round(v, 4) for k, v in self.seconds.items()}
        wall["total"] = round(time.perf_counter() - self._start[0], 4)
        cpu = {k: round(v, 4) for k, v in self.cpu.items()}
        cpu["total"] = round(time.process_time() - self._start[1], 4)
        return wall, cpu


def _register(
    native: Any, conf: steps.Conformed, head: np.ndarray, brain: np.ndarray | None,
    spec: PreprocessingSpec, workdir: Path,
) -> registration.Registration:
    """Initial translation, coarse + fine affine, optional SyN (see registration.py).

    Whole head (no native brain mask): start from the vertex, and sample the metric only
    inside the template brain and above the neck. With a native brain mask (deepbet):
    start from the brain centroid and register the skull-stripped scan without masks.
    """
    p = dict(spec.params)
    res = int(p["template_resolution_mm"])
    fixed, fixed_mask = antsio.template_t1(res), antsio.template_mask(res, p["template_mask_threshold"])
    t_brain, t_aff = fixed_mask.numpy() > 0.5, antsio.affine_of(fixed_mask)
    if brain is None:
        shift = registration.initial_translation(head, conf.affine, t_brain, t_aff, p)
        slab = registration.moving_slab_mask(head, conf.affine, p["moving_mask_depth_mm"])
        moving, masks = native, {"fixed_mask": fixed_mask,
                                 "moving_mask": antsio.to_ants(slab, conf.affine)}
    else:
        shift = registration.centroid_translation(brain, conf.affine, t_brain, t_aff)
        moving, masks = native * antsio.to_ants(brain.astype(np.float32), conf.affine), {}
    init = registration.write_translation(shift, workdir / "init.mat")
    reg = registration.register(moving, fixed, init, p, workdir, stage="coarse", **masks)
    reg = registration.register(moving, fixed, reg.fwd[0], p, workdir, stage="fine", **masks)
    if spec.registration == "syn":
        if brain is None:
            brain = skullstrip.template_mask_native(native, reg, p)
        strip = native * antsio.to_ants(brain.astype(np.float32), conf.affine)
        reg = registration.add_syn(reg, strip, fixed, p, workdir)
    return reg


def _quality(
    spec: PreprocessingSpec, reg: registration.Registration, native: Any,
    conf: steps.Conformed, native_mask: np.ndarray, grid_mask: np.ndarray, out: np.ndarray,
) -> dict[str, Any]:
    p = spec.params
    res = int(p["template_resolution_mm"])
    tmask = antsio.template_mask(res, p["template_mask_threshold"])
    tgrid = antsio.template_mask_on_grid(spec.grid, p["template_mask_threshold"],
                                         p["mask_threshold"])
    return qc.build_qc(
        facts=conf.facts, reg=reg, sim=qc.similarity(reg.warped, antsio.template_t1(res), tmask),
        native_mask=native_mask, native_spacing=tuple(native.spacing), grid_mask=grid_mask,
        template_grid_mask=tgrid, cover=qc.coverage(native, reg, tgrid, spec.grid),
        stats=qc.intensity_stats(conf.data, out, grid_mask), skullstrip=spec.skullstrip,
        early_flags=conf.flags,
    )


def preprocess(
    source: str | os.PathLike[str] | Any, spec: PreprocessingSpec, name: str | None = None
) -> PreprocessResult:
    """Preprocess one scan (path or nibabel image) according to `spec`.

    Raises:
        BrainAgeError: the input is unusable (not 3D, empty, NaN, absurd voxel size, ...)
            or a step failed; the message says why and how to fix it.
    """
    p = dict(spec.params)
    timer = _Timer()
    with timer("load"):
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
        conf = steps.conform(steps.load_image(source, label), label)
        head = steps.head_mask(conf.data, float(p["foreground_fraction"]))
        native = antsio.to_ants(conf.data, conf.affine)
    with timer("n4"):
        if spec.n4:
            native = steps.n4(native, antsio.to_ants(head.astype(np.float32), conf.affine), p)
    with tempfile.TemporaryDirectory(prefix="brainage-reg-") as tmp:
        with timer("skullstrip"):
            brain = skullstrip.deepbet_mask(conf.data, p) if spec.skullstrip == "deepbet" else None
        with timer("register"):
            reg = _register(native, conf, head, brain, spec, Path(tmp))
        with timer("resample"):
            data = registration.resample(native, reg, spec.grid, str(p["interpolation"]))
        with timer("skullstrip"):
            brain, grid_mask = _brain_masks(spec, reg, native, conf, data, brain)
        with timer("normalise"):
            out = steps.normalise(data, grid_mask, spec.normalisation)
        with timer("tissues"):
            maps, tissue_record = _tissues(spec, reg, data, grid_mask)
        with timer("qc"):
            record = _quality(spec, reg, native, conf, brain, grid_mask, out)
            if tissue_record is not None:
                record["flags"] = sorted(set(record["flags"]) | set(tissue_record.pop("flags")))
                record["tissues"] = tissue_record
    seconds, cpu = timer.total()
    record["seconds"], record["cpu_seconds"] = seconds, cpu
    return PreprocessResult(out, grid_mask, spec.grid.affine_array, record, brain, conf.affine,
                            seconds, cpu, maps)


def _brain_masks(
    spec: PreprocessingSpec, reg: registration.Registration, native: Any,
    conf: steps.Conformed, data: np.ndarray, brain: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(native brain mask, grid brain mask) for the spec's skull stripping."""
    p = dict(spec.params)
    if spec.skullstrip == "refined":
        template = antsio.template_mask_on_grid(spec.grid, p["template_mask_threshold"],
                                                p["mask_threshold"])
        grid_mask = skullstrip.refined_mask(data, template, spec.grid.spacing, p)
        back = registration.to_native(
            antsio.to_ants(grid_mask.astype(np.float32), spec.grid.affine_array), native, reg)
        return back.numpy() > float(p["mask_threshold"]), grid_mask
    if brain is None:
        brain = skullstrip.template_mask_native(native, reg, p)
    return brain, skullstrip.mask_on_grid(spec, reg, brain, conf.affine)


def _tissues(
    spec: PreprocessingSpec, reg: registration.Registration, data: np.ndarray,
    grid_mask: np.ndarray,
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    """Tissue maps (C, X, Y, Z) and their QC record (with ``flags``), or (None, None)."""
    if not spec.tissues:
        return None, None
    p = dict(spec.params)
    probs, fit = tissues.segment(data, grid_mask, tissues.template_priors(spec.grid), p)
    det = float(np.linalg.det(reg.matrix[:3, :3]))
    voxel_ml = float(np.prod(spec.grid.spacing)) / 1e3
    record, flags = tissues.tissue_qc(probs, fit, voxel_ml, det)
    template = antsio.template_mask_on_grid(spec.grid, p["template_mask_threshold"],
                                            p["mask_threshold"])
    record["etiv_ml"] = round(float(template.sum()) * voxel_ml * det, 1)  # atlas-scaled
    logjac = tissues.log_jacobian(reg, spec.grid)
    maps = probs if logjac is None else np.concatenate([probs, logjac[None]])
    return maps.astype(np.float32), {**record, "flags": flags}


def preprocess_image(
    source: str | os.PathLike[str] | Any, spec: PreprocessingSpec
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Preprocess one scan for prediction: ``(array (X, Y, Z) float32, affine (4, 4), qc)``.

    The array is on ``spec.grid`` and normalised like the training data; ``qc["flags"]``
    lists anything a user should look at before trusting a prediction.
    """
    result = preprocess_scan(source, spec)
    return result.array, result.affine, result.qc


def preprocess_scan(
    source: str | os.PathLike[str] | Any, spec: PreprocessingSpec
) -> PreprocessResult:
    """:func:`preprocess` for prediction: a library failure becomes the scan's InputError."""
    try:
        return preprocess(source, spec)
    except BrainAgeError:
        raise
    except Exception as exc:  # a library failure on this scan: report it as the scan's
        raise InputError(
            f"{source if isinstance(source, (str, os.PathLike)) else 'image'}: preprocessing "
            f"failed ({type(exc).__name__}: {one_line(exc)}). Fix: check the scan and its QC."
        ) from exc
