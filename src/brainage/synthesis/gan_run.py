"""Read a TGB-GAN run folder (``brainage gan train``) for synthesis: members, their
generators, the subjects each one saw, and the prepared cohort it was trained on.

Reads only safetensors and JSON (no Lightning, no checkpoints).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from brainage import run_kinds as rk
from brainage import runs as rf
from brainage.errors import NotFoundError
from brainage.preprocessing.prepared import PreparedCohort, open_prepared
from brainage.preprocessing.spec import PreprocessingSpec

SUBJECTS = "subjects.json"  # training.gan_fit.SUBJECTS


@dataclass(frozen=True)
class GanMember:
    """One generator of a GAN run.

    Attributes:
        name: Member folder relative to the run (``"."`` or ``fold-<k>``).
        fold: Fold index in the run's splits.
        seen: Every subject the GAN saw (trained on, or chose its epoch by).
        folder: Absolute member folder.
    """

    name: str
    fold: int
    seen: tuple[str, ...]
    folder: Path

    def generator(self, device: str = "cpu") -> Any:
        """The member's generator (best epoch), in eval mode."""
        from brainage.models import load_model

        return load_model(self.folder / "generator", device)


@dataclass(frozen=True)
class GanRun:
    """A finished GAN run folder.

    Attributes:
        root: The run folder.
        run_id: ``gan-<12 hex>`` naming the exact generators.
        members: One per fold.
        spec: Preprocessing spec the GAN was trained on.
        prepared: Path of the prepared cohort it was trained on (as recorded).
    """

    root: Path
    run_id: str
    members: tuple[GanMember, ...]
    spec: PreprocessingSpec
    prepared: str | None

    @property
    def splits_file(self) -> Path:
        """The run's ``splits.json`` (the folds its members were trained on)."""
        return self.root / rf.SPLITS


def open_gan_run(path: str | Path) -> GanRun:
    """Open a finished GAN run folder.

    Raises:
        NotFoundError: not a finished run.
        InputError: a run of another kind (age models), or a damaged member.
    """
    root = Path(path)
    info = rf.read_run_info(root)
    rk.expect_kind(root, info, rk.GAN, "pass the folder written by "
                   f"{rk.RUN_KINDS.get(rk.GAN).made_by}.")
    members = []
    for name in info.members:
        folder = rf.inside_run(root, name)
        subjects = rf.read_json(folder / SUBJECTS)
        members.append(GanMember(name, int(subjects["fold"]), tuple(subjects["seen"]), folder))
    spec = PreprocessingSpec.load(root / rf.PREPROCESSING)
    return GanRun(root, str(info.extra.get("run_id", "")), tuple(members), spec,
                  info.extra.get("prepared"))


def open_training_data(gan: GanRun, prepared: str | Path | PreparedCohort | None = None
                       ) -> PreparedCohort:
    """The prepared cohort the GAN was trained on (the recorded one by default), checked to
    have the GAN's preprocessing spec.

    Raises:
        NotFoundError: no prepared folder given and the recorded one is gone.
        BrainAgeError: the folder's spec differs from the GAN's.
    """
    from brainage.preprocessing.spec import check_spec_compatible

    source = prepared if prepared is not None else gan.prepared
    if source is None or (not isinstance(source, PreparedCohort) and not Path(source).is_dir()):
        raise NotFoundError(f"{gan.root}: the prepared cohort it was trained on ({source}) is "
                            "not there. Fix: pass it with --prepared.")
    cohort = open_prepared(source)
    check_spec_compatible(gan.spec, cohort.spec, what=("GAN", f"prepared {cohort.root}"))
    return cohort


def subject_scans(prepared: PreparedCohort, ids: tuple[str, ...] | list[str]
                  ) -> pd.DataFrame:
    """One scan per subject of `ids` that has an age (its first, youngest session), sorted
    by subject: the parents a synthesis interpolates."""
    t = prepared.table
    rows = t[t["participant_id"].isin(list(ids)) & t["age"].notna()]
    rows = rows.sort_values(["participant_id", "age"]).drop_duplicates("participant_id")
    return rows.reset_index(drop=True)


def load_images(rows: pd.DataFrame) -> list[tuple[str, torch.Tensor]]:
    """``(subject, image (1, D, H, W) float32)`` for every row of :func:`subject_scans`."""
    from brainage.data.datasets import ScanDataset

    data = ScanDataset.from_table(rows)
    return [(str(rows["participant_id"].iloc[i]), data.image(i)) for i in range(len(rows))]
