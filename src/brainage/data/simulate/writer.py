"""Write the simulated cohort as a BIDS dataset, atomically, optionally in parallel.

Layout::

    OUT/dataset_description.json, README, participants.tsv, participants.json
    OUT/sub-001/[ses-1/]anat/sub-001[_ses-1]_T1w.nii.gz
    OUT/sub-001/sub-001_sessions.tsv, OUT/sessions.json   (several sessions only)
    OUT/derivatives/simulation/ground_truth.tsv + .json   (what pipelines must not read)
    OUT/derivatives/simulation/README, .bidsignore        (ground_truth.* are not BIDS files)
    OUT/derivatives/simulation/sub-001/.../*_desc-brain_mask.nii.gz + .json   (--masks)

The dataset and its ground truth pass the official BIDS validator (``docs/bids.md``).
"""

from __future__ import annotations

import gzip
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from brainage import __version__
from brainage.data.simulate import anatomy, bids_text
from brainage.data.simulate.cohort import ANATOMY, Subject, plan_cohort, subject_rng
from brainage.data.simulate.config import SIMULATOR_VERSION, SimulationConfig
from brainage.data.simulate.scanner import Site, plan_sites
from brainage.data.simulate.subject import scan_subject, scan_truth
from brainage.data.simulate.templates import load_templates
from brainage.errors import InputError
from brainage.io import atomic_path, write_json, write_tsv

#: Where the ground truth goes, relative to OUT.
TRUTH_DIR = Path("derivatives") / "simulation"


def write_cohort(out: str | os.PathLike[str], config: SimulationConfig, *, jobs: int = 1,
                 overwrite: bool = False, masks: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> Path:
    """Simulate `config`'s cohort into the BIDS folder `out`.

    Args:
        out: Destination folder; built in a temporary sibling and renamed at the end.
        config: Simulation settings (validated first; nothing is written if invalid).
        jobs: Worker processes; the files are identical whatever the number.
        overwrite: Replace an existing non-empty `out`.
        masks: Also write each scan's true brain mask (native grid) to the ground truth
            folder, ``..._desc-brain_mask.nii.gz``, to score skull stripping.
        progress: Called with (subjects done, total) after each subject.

    Raises:
        BrainAgeError: invalid settings, or `out` exists and is not an empty folder.
    """
    config.validate()
    final = _check_destination(Path(out), overwrite, jobs)
    load_templates(config.voxel_size)  # cached before forking, so workers share it
    subjects, sites = plan_cohort(config), plan_sites(config)
    with atomic_path(final) as tmp:
        tmp.mkdir()
        _write_metadata(tmp, config, subjects, sites)
        tasks = [(config, s, sites[s.site], str(tmp), masks) for s in subjects]
        rows: list[dict[str, Any]] = []
        for done, result in enumerate(_run(tasks, jobs), start=1):
            rows.extend(result)
            if progress is not None:
                progress(done, len(tasks))
        _write_truth(tmp, config, sites, rows)
    return final


def _check_destination(out: Path, overwrite: bool, jobs: int) -> Path:
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise InputError(f"--jobs: got {jobs!r}; expected an integer >= 1. Fix: pass --jobs 1.")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder. Fix: choose another OUT path.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(
            f"{out}: folder exists and is not empty; expected a new or empty folder. "
            "Fix: choose another OUT path or pass --overwrite to replace it."
        )
    return out.absolute()


def _run(tasks: list[tuple[Any, ...]], jobs: int) -> Any:
    if jobs == 1 or len(tasks) == 1:
        return map(_write_subject, tasks)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context)
    return _drain(pool, tasks)


def _drain(pool: ProcessPoolExecutor, tasks: list[tuple[Any, ...]]) -> Any:
    with pool:
        yield from pool.map(_write_subject, tasks)


def _write_subject(task: tuple[SimulationConfig, Subject, Site, str, bool]) -> list[dict[str, Any]]:
    """Simulate and write every session of one subject; return its ground-truth rows."""
    config, subject, site, root, masks = task
    templates = load_templates(config.voxel_size)
    body = anatomy.draw_anatomy(subject_rng(config.seed, subject.index, ANATOMY), subject.sex,
                                config.variability)
    rows = []
    for k, session in enumerate(subject.sessions):
        scan = scan_subject(templates, config, subject, site, k, ("brain",) if masks else ())
        rel = scan_path(subject.participant_id, session)
        save_nifti(Path(root) / rel, scan.data, scan.affine)
        if masks:
            mask = (scan.maps["brain"] > 0.5).astype(np.uint8)
            name = rel.name.replace("_T1w.nii.gz", "_desc-brain_mask.nii.gz")
            save_nifti(Path(root) / TRUTH_DIR / rel.parent / name, mask, scan.affine)
            write_json(Path(root) / TRUTH_DIR / rel.parent / name.replace(".nii.gz", ".json"),
                       bids_text.truth_mask_sidecar(rel.as_posix()))
        rows.append({**scan_truth(subject, site, k, scan, body), "path": rel.as_posix()})
    if len(subject.sessions) > 1:
        table = pd.DataFrame({"session_id": subject.sessions, "age": list(subject.ages)})
        write_tsv(Path(root) / subject.participant_id /
                  f"{subject.participant_id}_sessions.tsv", table)
    return rows


def scan_path(participant_id: str, session: str | None) -> Path:
    """BIDS path of a T1w image, relative to the dataset root."""
    if session is None:
        return Path(participant_id) / "anat" / f"{participant_id}_T1w.nii.gz"
    return Path(participant_id) / session / "anat" / f"{participant_id}_{session}_T1w.nii.gz"


def save_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write a gzipped NIfTI-1 fast (level 1) and byte-for-byte reproducibly (mtime 0)."""
    import nibabel as nib

    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units("mm")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(img.to_bytes(), compresslevel=1, mtime=0))


def _write_metadata(root: Path, config: SimulationConfig, subjects: list[Subject],
                    sites: list[Site]) -> None:
    write_json(root / "dataset_description.json", bids_text.description(config, __version__))
    (root / "README").write_text(bids_text.readme(config))
    table = pd.DataFrame({
        "participant_id": [s.participant_id for s in subjects],
        "age": [s.ages[0] for s in subjects],
        "sex": [s.sex for s in subjects],
        "site": [sites[s.site].name for s in subjects],
        "group": [s.group for s in subjects],
    })
    write_tsv(root / "participants.tsv", table)
    write_json(root / "participants.json", bids_text.PARTICIPANTS_JSON)
    if config.sessions > 1:  # describes every sub-*/sub-*_sessions.tsv (inherited)
        write_json(root / "sessions.json", bids_text.SESSIONS_JSON)


def _write_truth(root: Path, config: SimulationConfig, sites: list[Site],
                 rows: list[dict[str, Any]]) -> None:
    folder = root / TRUTH_DIR
    write_json(folder / "dataset_description.json",
               bids_text.truth_description(__version__))
    write_tsv(folder / "ground_truth.tsv", pd.DataFrame(rows))
    write_json(folder / "ground_truth.json", {
        "simulator": {"name": "brainage.data.simulate", "version": SIMULATOR_VERSION,
                      "brainage_version": __version__},
        "config": config.to_dict(),
        "sites": [s.to_dict() for s in sites],
        "columns": bids_text.TRUTH_COLUMNS,
        **bids_text.truth_columns(),  # the same, as a BIDS tabular sidecar reads them
    })
    (folder / "README").write_text(bids_text.truth_readme(config))
    (folder / ".bidsignore").write_text("".join(f"{p}\n" for p in bids_text.TRUTH_IGNORE))
