"""The public API's use of a run on new scans: predictions and explanation maps
(:mod:`brainage.api`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from brainage.api._common import PathLike, _fs

if TYPE_CHECKING:
    import pandas as pd

    from brainage.data.cohort import Cohort
    from brainage.inference.explain import Explanation, FailedScan
    from brainage.preprocessing.prepared import PreparedCohort
    from brainage.progress import ProgressArg


def predict(inputs: PathLike | PreparedCohort | Sequence[PathLike],
            model: PathLike | None = None, *, jobs: int | None = 1,
            progress: ProgressArg = False, threads: int | None = None,
            cohort: Cohort | PathLike | None = None, dicom_series: str | None = None,
            device: str | None = None, batch_size: int = 8,
            allow_library_drift: bool = False) -> pd.DataFrame:
    """Brain age of new scans, whatever form they come in: ``brainage predict`` in Python.

    Raw scans are preprocessed with the model's own spec; prepared inputs must have been
    prepared with it (:meth:`brainage.Predictor.predict`, which this calls once per input
    group, and :mod:`brainage.inference.many`, which runs the scans in `jobs` worker
    processes with bit-identical results whatever `jobs`).

    Args:
        inputs: One input or a list of them: NIfTI files, DICOM folders, a BIDS folder or a
            cohort table (each scan preprocessed), a prepared folder (of :func:`prepare`),
            OpenBHB arrays, or an opened ``PreparedCohort``. In a list, the raw scans
            (NIfTI files, DICOM folders) are predicted together and every other entry on
            its own; the rows come in that order.
        model: A run folder (of :func:`train`, :func:`probe`, ...); None or ``"bundled"``:
            the model shipped with brainage (a warning says what it is valid for).
        jobs: Worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines and a summary line on stderr; a
            callable ``fn(done, total)``.
        threads: Torch threads per worker (default: cores / jobs).
        cohort: Ages/sex/site for a prepared folder without ``cohort.tsv``.
        dicom_series: SeriesNumber or SeriesInstanceUID of the series to use in each DICOM
            folder (default: the T1w one).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        batch_size: Scans per forward pass.
        allow_library_drift: Accept prepared inputs whose spec differs only in library
            versions (with a warning).

    Returns:
        One row per scan: ``participant_id``, ``session``, ``age``, ``predicted_age``,
        ``gap`` (+ bias-corrected columns, interval, ensemble SD, QC and
        out-of-distribution flags); a scan that could not be predicted has its reason in
        ``error``. ``table.attrs`` holds ``run_dir`` (the model used) and ``notes`` (what
        the predictions lack, each also warned about).

    Raises:
        BrainAgeError: no such model (or none bundled), nothing to predict, inputs
            prepared with another spec, or no scan could be predicted.
    """
    import warnings

    from brainage.data.cohort import Cohort
    from brainage.errors import InputError
    from brainage.inference.many import concat
    from brainage.inference.outputs import NoteWarning
    from brainage.inference.predictor import Predictor

    run = _model_dir(model)
    groups = _input_groups(inputs)
    if not groups:
        raise InputError(f"nothing to predict with {run}. Fix: give scans, a cohort or a "
                         "prepared folder.")
    if model is None or _fs(model) == "bundled":
        from brainage.bundled_runs import validity_note

        note = validity_note(run)
        if note is not None:
            warnings.warn(f"using the {note}", NoteWarning, stacklevel=2)
    predictor = Predictor.from_run(run, device=device, batch_size=batch_size,
                                   allow_library_drift=allow_library_drift)
    any_raw = any(isinstance(g, list) for g in groups)
    tables = []
    for group in groups:
        is_raw = isinstance(group, list)
        tables.append(predictor.predict(
            group, None if is_raw or cohort is None
            else cohort if isinstance(cohort, Cohort) else _fs(cohort),
            dicom_series=dicom_series if is_raw or not any_raw else None,
            jobs=jobs, progress=progress, threads=threads))
    table = tables[0] if len(tables) == 1 else concat(tables).reset_index(drop=True)
    table.attrs.update(run_dir=predictor.run_dir, notes=list(predictor.notes))
    return table


def _model_dir(model: PathLike | None) -> Path:
    """The run folder `model` names: itself, or the bundled model for None/``bundled``."""
    from brainage.bundled_runs import BUNDLED, default_model_dir
    from brainage.errors import NotFoundError

    if model is not None and _fs(model) != BUNDLED:
        return Path(model)
    found = default_model_dir()
    if found is None:
        raise NotFoundError("this installation has no bundled model. Fix: pass model=RUN, "
                            "a run folder written by `brainage train`.")
    return found


def _input_groups(inputs: PathLike | PreparedCohort | Sequence[PathLike]
                  ) -> list[list[Path] | Path | PreparedCohort]:
    """The calls of :meth:`Predictor.predict` `inputs` need: every raw scan together (a
    list, at the place of the first), each other input alone."""
    from brainage.inference.predictor import is_raw_scan
    from brainage.preprocessing.prepared import PreparedCohort

    if isinstance(inputs, PreparedCohort):
        return [inputs]
    items = [Path(inputs)] if isinstance(inputs, str | os.PathLike) \
        else [Path(p) for p in inputs]
    raw = [p for p in items if is_raw_scan(p)]
    groups: list[list[Path] | Path | PreparedCohort] = []
    for item in items:
        if item not in raw:
            groups.append(item)
        elif item == raw[0]:
            groups.append(raw)
    return groups


def explain(run: PathLike, scans: Sequence[PathLike], output: PathLike, method: str = "auto",
            *, steps: int = 32, batch: int = 4, patch: int = 8, stride: int | None = None,
            sex: str | None = None, device: str | None = None,
            dicom_series: str | None = None, jobs: int | None = 1,
            progress: ProgressArg = False, threads: int | None = None
            ) -> list[Explanation | FailedScan]:
    """Explanation maps (template and native space) and region tables for raw scans.

    ``auto``: integrated gradients for networks, exact linear contributions for linear
    classical models (ridge, gpr); a stack sums its members' maps with its weights
    (:func:`brainage.inference.explain.explain_scan`, per scan).

    Args:
        run: The run folder.
        scans: Raw NIfTI files or DICOM folders (prepared with the run's spec), or
            prepared ``.npy`` arrays.
        output: The derivatives folder to write into.
        method: ``auto``, ``ig`` (integrated gradients), ``occlusion``, ``smoothgrad`` or
            ``linear`` (classical models only).
        steps: Path points (IG) or noisy samples (SmoothGrad).
        batch: Volumes per forward/backward pass (memory).
        patch: Occlusion patch size in grid voxels.
        stride: Occlusion stride (default: the patch size).
        sex: ``"F"``/``"M"`` for models that take sex (default unknown, as in prediction).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        dicom_series: SeriesNumber or UID of each DICOM folder's series (default: its T1w
            one).
        jobs: Worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines; a callable ``fn(done, total)``.
        threads: Torch threads per worker (default: cores / jobs).

    Returns:
        One entry per scan, in order: an :class:`Explanation`, or a ``FailedScan`` with
        the reason (the others go on).
    """
    from brainage.errors import InputError
    from brainage.inference.explain import METHODS, explain_scans

    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}. "
                         "Fix: e.g. --method auto.")
    if sex not in (None, "F", "M"):
        raise InputError(f"sex must be F or M, got {sex!r}. Fix: --sex F or M.")
    return explain_scans(_fs(run), [Path(s) for s in scans], _fs(output), jobs=jobs, progress=progress,
                         threads=threads, method=method, steps=steps, batch=batch,
                         patch=patch, stride=stride, sex=sex, device=device,
                         dicom_series=dicom_series)
