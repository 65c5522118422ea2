"""The synthetic dataset on disk: a prepared cohort the trainer reads, and BIDS derivatives.

Layout (``OUT`` is built as ``.OUT.partial`` and renamed when complete)::

    dataset_description.json   BIDS derivative; GeneratedBy brainage with the GAN run id
    participants.tsv + .json   every subject synthetic: age label, parents, weight, GAN member
    synthesis.json             format, GAN run id and path, settings, per member: the subjects
                               the GAN saw and the plan (parents, weights, ages)
    splits.json                the GAN run's folds (absent for a GAN trained on every subject)
    preprocessing_spec.json, index.tsv, qc.tsv, cache/, cohort.tsv   the prepared-cache format
    sub-<id>/anat/sub-<id>_space-<tpl>_res-<r>_desc-synthetic_T1w.nii.gz + .json
    change_map/                (optional) the young -> old change map, see change_map_io
    README, .bidsignore        the cache, tables, manifest and change map are not BIDS files

The folder passes the official BIDS validator (``tests/test_bids_validator.py``, accepted
warnings in ``docs/bids.md``); ``change_map/`` is validated as a dataset of its own.

The cohort table marks every subject ``group = synthetic``: ``brainage train`` refuses to
train on the folder directly (its splits would validate and test on synthetic brains); add
it to a real cohort's training folds with ``brainage train --synthetic OUT``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.data.cohort import Cohort
from brainage.data.splits_file import SYNTHETIC_GROUP
from brainage.errors import InputError
from brainage.io import parse_json_file, write_json, write_tsv
from brainage.preprocessing.cache import CacheStore, ScanKey
from brainage.preprocessing.derivatives import (
    PREPARED_IGNORE,
    resolution_text,
    save_nifti,
    source_url,
    write_bidsignore,
    write_readme,
)
from brainage.preprocessing.prepared import COHORT_FILE
from brainage.preprocessing.sidecars import write_table_sidecar
from brainage.preprocessing.spec import PreprocessingSpec
from brainage.synthesis.plan import SynthesisPlan, SyntheticChild

MANIFEST = "synthesis.json"
#: ``desc`` entity of the age-change map (:mod:`brainage.synthesis.change_map_io`).
CHANGE_DESC = "agechange"
FORMAT = "brainage-synthesis"
VERSION = 1
PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Synthetic subject (sub-synf<fold>b<age bin>n<k>)."},
    "age": {"Description": "Age label: w * age of parent_1 + (1 - w) * age of parent_2.",
            "Units": "year"},
    "group": {"Description": "Always 'synthetic'."},
    "synthetic": {"Description": "Always true: a decoded latent interpolation, not a person."},
    "parent_1": {"Description": "Real subject whose latent has weight w."},
    "parent_2": {"Description": "Real subject whose latent has weight 1 - w."},
    "weight": {"Description": "w, the interpolation weight of parent_1 (U(0, 1))."},
    "age_bin": {"Description": "Age bin the parents share (index of floor(age / width + 0.5))."},
    "gan_fold": {"Description": "Fold of the GAN run member whose generator made the subject "
                             "(0 for a GAN trained on every subject)."},
}
#: The dataset's files that BIDS does not define (its ``.bidsignore``).
IGNORE = (*PREPARED_IGNORE, f"/{MANIFEST}", "/splits.json", "/change_map")
README = """Synthetic, age-labelled brains made by brainage gan synthesize from TGB-GAN run
{gan_id}: each subject is the decoded interpolation of the latents of two real subjects of
one age bin (participants.tsv names the parents and the weight). Not people: research use.

The subjects are also a prepared cohort (cache/, index.tsv, cohort.tsv) for
`brainage train --synthetic`; synthesis.json records the plan. These, and change_map/ (a
dataset of its own), are listed in .bidsignore.
"""


@dataclass(frozen=True)
class Child:
    """A planned child with its dataset identity.

    Attributes:
        plan: The child as planned (its ``child_id`` is the BIDS participant id).
        member: GAN member folder name; ``fold`` its fold.
    """

    plan: SyntheticChild
    member: str
    fold: int

    @property
    def key(self) -> ScanKey:
        return ScanKey(self.plan.child_id)


def bids_children(plan: SynthesisPlan, member: str, fold: int) -> list[Child]:
    """The plan's children with BIDS ids ``sub-synf<fold>b<bin>n<k>`` (letters and digits)."""
    out = []
    for c in plan.children:
        k = int(c.child_id.rsplit("-", 1)[1])
        ident = f"sub-synf{fold}b{c.age_bin:03d}n{k:04d}"
        out.append(Child(replace(c, child_id=ident), member, fold))
    return out


def nifti_path(root: Path, key: ScanKey, spec: PreprocessingSpec) -> Path:
    """Where a child's NIfTI goes (``.json`` sidecar beside it)."""
    name = f"{key.stem}_space-{spec.template}_res-{spec.grid.res_label}_desc-synthetic_T1w"
    return root / key.stem / "anat" / f"{name}.nii.gz"


def write_child(root: Path, store: CacheStore, child: Child, volume: np.ndarray,
                gan_id: str) -> None:
    """Write one child: cache array, NIfTI + sidecar, then its record (marks it done)."""
    spec, key, c = store.spec, child.key, child.plan
    array = store.write_array(key, volume)
    nii = nifti_path(root, key, spec)
    save_nifti(nii, volume, spec.grid.affine_array, np.float32)
    about = {"Synthetic": True, "Parents": list(c.parents), "Weight": c.weight, "Age": c.age,
             "AgeBin": c.age_bin, "GanRun": gan_id, "GanMember": child.member}
    write_json(nii.with_name(nii.name.replace(".nii.gz", ".json")), {
        **about, "SpatialReference": spec.template, "Resolution": resolution_text(spec),
        "SkullStripped": True, "PreprocessingSpecHash": spec.hash,
        "Description": "Decoded TGB-GAN latent interpolation of two real subjects."})
    store.write_record(key, {
        "participant_id": c.child_id, "session": None, "run": None, "scan": key.stem,
        "source": f"{gan_id}:{child.member}", "spec_hash": spec.hash, "status": "ok",
        "error": None, "flags": [], "array": str(array.relative_to(root)),
        "preproc": str(nii.relative_to(root)), "synthetic": about})


def participants(children: list[Child]) -> pd.DataFrame:
    """``participants.tsv`` rows, one per child."""
    return pd.DataFrame([{
        "participant_id": ch.plan.child_id, "age": round(ch.plan.age, 4),
        "group": SYNTHETIC_GROUP, "synthetic": "true", "parent_1": ch.plan.parents[0],
        "parent_2": ch.plan.parents[1], "weight": round(ch.plan.weight, 6),
        "age_bin": ch.plan.age_bin, "gan_fold": ch.fold} for ch in children],
        columns=list(PARTICIPANTS_JSON))


def write_tables(root: Path, store: CacheStore, children: list[Child], gan_id: str,
                 source: str, manifest: dict[str, Any]) -> None:
    """Index, participants, cohort table, dataset description and manifest (after the
    volumes)."""
    store.build_index()
    table = participants(children)
    write_tsv(root / "participants.tsv", table)
    write_json(root / "participants.json", {
        "Description": "Synthetic subjects, one per row: age label, parents and weight.",
        **PARTICIPANTS_JSON})
    spec = store.spec
    paths = [str(nifti_path(root, ch.key, spec).relative_to(root)) for ch in children]
    cohort = table[["participant_id", "age", "group"]].assign(path=paths)
    prepared = Cohort(cohort, str(root))
    prepared.to_tsv(root / COHORT_FILE)
    write_table_sidecar(root / COHORT_FILE, prepared.table.columns)
    write_json(root / "dataset_description.json", {
        "Name": f"TGB-GAN synthetic brains ({gan_id})", "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainage", "Version": __version__,
                         "Description": "brainage gan synthesize: within-bin latent "
                                        "interpolation of a TGB-GAN's encodings, decoded "
                                        f"(preprocessing spec {spec.hash})",
                         "GanRun": gan_id}],
        "SourceDatasets": [{"URL": source_url(source)}], "PreprocessingSpecHash": spec.hash})
    write_readme(root, README.format(gan_id=gan_id))
    write_bidsignore(root, IGNORE)
    write_json(root / MANIFEST, manifest)


def read_manifest(root: str | Path) -> dict[str, Any]:
    """``synthesis.json`` of a synthetic dataset, checked.

    Raises:
        InputError: the folder is not a synthetic dataset (or was written by a newer
            brainage).
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise InputError(f"{root}: no {MANIFEST}, so this is not a synthetic dataset. Fix: "
                         "pass a folder written by `brainage gan synthesize`.")
    data = parse_json_file(path, "rerun `brainage gan synthesize`")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a brainage synthesis manifest (format {FORMAT!r}).")
    if int(data.get("version", 0)) > VERSION:
        raise InputError(f"{path}: written by a newer brainage. Fix: upgrade brainage.")
    return data


def map_name(spec: PreprocessingSpec, desc: str = CHANGE_DESC, suffix: str = "map") -> str:
    """File stem of a group-level map on the spec's template grid."""
    return f"space-{spec.template}_res-{spec.grid.res_label}_desc-{desc}_{suffix}"


def find_change_map(folder: str | Path) -> Path | None:
    """The age-change map NIfTI in `folder` or its ``change_map/`` subfolder, if any."""
    for where in (Path(folder), Path(folder) / "change_map"):
        found = sorted(where.glob(f"space-*_desc-{CHANGE_DESC}_map.nii.gz")) \
            if where.is_dir() else []
        if found:
            return found[0]
    return None
