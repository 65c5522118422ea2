"""The public API's BIDS App levels: participant and group (:mod:`brainage.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from brainage.api._common import PathLike

if TYPE_CHECKING:
    from brainage.bidsapp.group import GroupSummary
    from brainage.bidsapp.participant import ParticipantSummary
    from brainage.progress import ProgressArg


def bids_participant(bids_dir: PathLike, output_dir: PathLike, model: PathLike | None = None,
                     participant_labels: Sequence[str] | None = None, *, explain: bool = True,
                     method: str = "auto", steps: int = 32, device: str | None = None,
                     batch_size: int = 8, threads: int | None = None, jobs: int | None = 1,
                     progress: ProgressArg = False) -> ParticipantSummary:
    """BIDS-App participant level: prepare, predict and explain each subject into
    ``output_dir/sub-<label>/`` (:func:`brainage.bidsapp.bids_participant`; parallel
    processes into one folder are safe).

    Args:
        bids_dir: The BIDS dataset.
        output_dir: The derivatives folder (shared by every participant-level process).
        model: A run folder of :func:`train`; default the bundled model.
        participant_labels: Only these participants (with or without ``sub-``).
        explain: Also write explanation maps.
        method: The explanation method (as in :func:`explain`).
        steps: Explanation steps (as in :func:`explain`).
        device: ``cpu``/``cuda`` (default: CUDA when available).
        batch_size: Scans per forward pass.
        threads: Torch threads per worker.
        jobs: Subjects in parallel worker processes (None: every core).
        progress: False: quiet; True: a bar or log lines; a callable ``fn(done, total)``.

    Returns:
        The summary (``.format()`` prints it).
    """
    from brainage.bidsapp import bids_participant as _participant

    summary: ParticipantSummary = _participant(
        bids_dir, output_dir, model, participant_labels, explain=explain, method=method,
        steps=steps, device=device, batch_size=batch_size, threads=threads, jobs=jobs,
        progress=progress)
    return summary


def bids_group(bids_dir: PathLike, output_dir: PathLike,
               participant_labels: Sequence[str] | None = None, *,
               correction: PathLike | None = None, method: str | None = None,
               fit_on: str | None = None, per_site: bool = False, n_boot: int = 1000,
               seed: int = 0, folds: int = 5, reference: str = "control",
               n_splits: int = 100) -> GroupSummary:
    """BIDS-App group level: collate the subjects' predictions, evaluate and report into
    ``output_dir/group`` (:func:`brainage.bidsapp.bids_group`). The evaluation options are
    those of :func:`evaluate` (e.g. ``fit_on="group==control"`` fits the bias correction on
    the controls).

    Returns:
        The summary (``.format()`` prints it).
    """
    from brainage.bidsapp import bids_group as _group

    summary: GroupSummary = _group(
        bids_dir, output_dir, participant_labels, correction=correction, method=method,
        fit_on=fit_on, per_site=per_site, n_boot=n_boot, seed=seed, folds=folds,
        reference=reference, n_splits=n_splits)
    return summary
