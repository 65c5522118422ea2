"""The BIDS App: ``brainage BIDS_DIR OUTPUT_DIR participant|group``.

The participant level (:mod:`.participant`) prepares, predicts and explains each subject
independently (safe in parallel into one output folder); the group level (:mod:`.group`)
collates, evaluates and reports. Both are glue over the public API.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from brainage.errors import InputError

PathLike = str | os.PathLike[str]


def default_model() -> Path | None:
    """The bundled model's run folder, used when no ``--model`` is given (None if the
    installation ships none; :func:`brainage.inference.bundled.default_model_dir`)."""
    from brainage.inference.bundled import default_model_dir

    return default_model_dir()


def resolve_model(model: str | Path | None) -> Path:
    """The run folder to use: `model`, else :func:`default_model`.

    Raises:
        InputError: no model given and none bundled.
    """
    if model is not None:
        return Path(model)
    bundled = default_model()
    if bundled is None:
        raise InputError("no model given, and this installation has no bundled model. Fix: "
                         "pass --model RUN, a run folder written by `brainage train`.")
    return bundled


def bids_participant(bids_dir: PathLike, output_dir: PathLike, model: PathLike | None = None,
                     participant_labels: Sequence[str] | None = None, **options: Any) -> Any:
    """BIDS-App participant level: prepare, predict and explain each subject into
    ``output_dir/sub-<label>/`` (parallel processes into one folder are safe).

    Args:
        bids_dir: The BIDS dataset.
        output_dir: The derivatives folder (shared by every participant-level process).
        model: A run folder of :func:`brainage.train`; default the bundled model (none yet).
        participant_labels: Only these participants (with or without ``sub-``).
        **options: Fields of :class:`brainage.bidsapp.participant.Options` (``explain``,
            ``method``, ``steps``, ``device``, ``batch_size``, ``threads``, ``jobs``:
            subjects in parallel worker processes, default 1, None every core;
            ``progress``: False quiet, True a bar or log lines, or ``fn(done, total)``).

    Returns:
        A :class:`~brainage.bidsapp.participant.ParticipantSummary` (``.format()``).
    """
    from brainage.bidsapp.participant import Options, run_participants
    from brainage.data.sources import read_cohort

    run = resolve_model(model)
    report = read_cohort(bids_dir, format="bids", participant_labels=participant_labels,
                         check_images=False)  # a bad image fails its subject alone
    summary = run_participants(Path(bids_dir), Path(output_dir), run, report.cohort,
                               Options(**options))
    summary.notes[:0] = report.notes
    summary.warnings[:0] = report.warnings
    return summary


def bids_group(bids_dir: PathLike, output_dir: PathLike,
               participant_labels: Sequence[str] | None = None, **evaluate: Any) -> Any:
    """BIDS-App group level: collate the subjects' predictions, evaluate (bias correction
    fitted on controls with ``fit_on="group==control"``) and report into ``output_dir/group``.

    Options are those of :func:`evaluate` (``fit_on``, ``method``, ``correction``,
    ``per_site``, ``n_boot``, ``seed``, ``reference``). Returns a
    :class:`~brainage.bidsapp.group.GroupSummary` (``.format()``).
    """
    from brainage.bidsapp.group import run_group
    from brainage.data.sources import read_cohort

    report = read_cohort(bids_dir, format="bids", participant_labels=participant_labels,
                         check_images=False)
    summary = run_group(Path(output_dir), report.cohort, participant_labels, **evaluate)
    summary.warnings[:0] = report.warnings
    return summary
