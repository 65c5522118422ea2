"""The synthetic aging cohort: a valid BIDS dataset of T1w heads whose anatomy ages.

Built from the MNI152 template and tissue maps bundled in nilearn (offline). Per subject:
a chronological age (site-specific ranges, optionally confounded with site), a true brain
age (age + individual gap + patient effect), anatomy aged by ventricle widening and
regionally uneven cortical thinning, inter-subject variability (head size by sex, smooth
deformation), a random head pose with scalp and skull, and site effects (grid and
orientation, gamma, intensity scale, bias field, blur, Rician noise). Ground truth goes to
``derivatives/simulation/``. Deterministic for a seed; subject ``k`` does not depend on
the number of subjects or of jobs.

Example:
    >>> from brainage.data.simulate import simulate_cohort
    >>> simulate_cohort("synthetic", n=20, sites=2, seed=0, voxel_size=4)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import fields as _fields
from pathlib import Path
from typing import Any

from brainage.data.simulate.anatomy import TissueMaps
from brainage.data.simulate.cohort import Subject, plan_cohort
from brainage.data.simulate.config import SIMULATOR_VERSION, SimulationConfig
from brainage.data.simulate.scanner import Site, plan_sites
from brainage.data.simulate.subject import Scan, simulate_scan, subject_tissue_maps
from brainage.data.simulate.templates import Templates, load_templates
from brainage.data.simulate.writer import TRUTH_DIR, write_cohort
from brainage.errors import InputError

__all__ = [
    "SIMULATOR_VERSION", "TRUTH_DIR", "Scan", "SimulationConfig", "Site", "Subject",
    "Templates", "TissueMaps", "load_templates", "make_config", "plan_cohort", "plan_sites",
    "simulate_cohort", "simulate_scan", "subject_tissue_maps", "write_cohort",
]


def make_config(**options: Any) -> SimulationConfig:
    """A validated SimulationConfig; unknown option names are refused with the valid ones.

    Raises:
        BrainAgeError: unknown option; ValidationError (a BrainAgeError) for bad values.
    """
    valid = [f.name for f in _fields(SimulationConfig)]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise InputError(
            f"unknown simulation option(s) {unknown}; expected some of {valid}. "
            "Fix: check the spelling."
        )
    return SimulationConfig(**options).validate()


def simulate_cohort(out: str | os.PathLike[str], n: int = 200, sites: int = 4, seed: int = 0,
                    *, jobs: int = 1, overwrite: bool = False, masks: bool = False,
                    **options: Any) -> Path:
    """Simulate a cohort and write it as a BIDS dataset; returns the dataset folder.

    Args:
        out: Destination folder (must be new or empty unless `overwrite`).
        n: Number of subjects.
        sites: Number of sites.
        seed: Master seed.
        jobs: Worker processes (the output does not depend on it).
        overwrite: Replace an existing non-empty `out`.
        masks: Also write the true native-space brain masks to ``derivatives/simulation``.
        **options: Other :class:`SimulationConfig` fields, e.g. ``voxel_size=4``,
            ``sessions=3``, ``patient_fraction=0.3``.
    """
    config = make_config(n=n, sites=sites, seed=seed, **options)
    return write_cohort(out, config, jobs=jobs, overwrite=overwrite, masks=masks)
