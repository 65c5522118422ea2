"""The text files of the simulated BIDS dataset: descriptions, README, column sidecars."""

from __future__ import annotations

from typing import Any

from brainage.data.simulate.config import SIMULATOR_VERSION, SimulationConfig

BIDS_VERSION = "1.9.0"

PARTICIPANTS_JSON: dict[str, Any] = {
    "participant_id": {"Description": "Participant identifier."},
    "age": {"Description": "Chronological age at the first session.", "Units": "year"},
    "sex": {"Description": "Sex.", "Levels": {"F": "female", "M": "male"}},
    "site": {"Description": "Acquisition site (scanner)."},
    "group": {
        "Description": "Diagnostic group.",
        "Levels": {"control": "healthy control", "patient": "patient (brain ages faster)"},
    },
}

TRUTH_COLUMNS: dict[str, str] = {
    "participant_id": "Participant identifier.",
    "session": "Session label, n/a for single-session datasets.",
    "age": "Chronological age at this scan (years).",
    "brain_age": "True brain age at this scan (years): what the anatomy was aged to.",
    "gap": "brain_age - age (years): individual gap plus the patient effect.",
    "group": "control or patient.",
    "sex": "F or M.",
    "site": "Acquisition site.",
    "ventricle_strength": "Ventricle widening applied (mm^2; 0 = template).",
    "head_scale": "Head size relative to the MNI152 template (geometric mean over axes).",
    "ventricle_offset": "Individual ventricle size, in units of the aging curve.",
    "thinning_factor": "Individual cortical thinning rate (1 = average).",
    "skull_factor": "Individual scalp and skull thickness (1 = average).",
    "rotation_x": "Head rotation about x (degrees).",
    "rotation_y": "Head rotation about y (degrees).",
    "rotation_z": "Head rotation about z (degrees).",
    "shift_x": "Head translation along x (mm), on top of the site's offset.",
    "shift_y": "Head translation along y (mm).",
    "shift_z": "Head translation along z (mm).",
    "path": "Image path relative to the dataset root.",
}


def description(config: SimulationConfig, version: str) -> dict[str, Any]:
    """dataset_description.json of the raw dataset."""
    return {
        "Name": f"brainage synthetic aging cohort (n={config.n}, seed={config.seed})",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": "CC0",
        "Authors": ["brainage simulator"],
        "GeneratedBy": [{
            "Name": "brainage",
            "Version": version,
            "Description": f"brainage simulate (simulator version {SIMULATOR_VERSION}) "
                           "from the MNI152 2009 template bundled in nilearn",
        }],
    }


def truth_description(version: str) -> dict[str, Any]:
    """dataset_description.json of the ground-truth derivative."""
    return {
        "Name": "Simulation ground truth (true brain age, site parameters)",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainage", "Version": version}],
    }


def readme(config: SimulationConfig) -> str:
    """README of the raw dataset."""
    return (
        "Synthetic aging cohort simulated by brainage (research and testing only).\n\n"
        f"{config.n} subjects, {config.sites} sites, {config.sessions} session(s), "
        f"seed {config.seed}, template voxel size {config.voxel_size} mm.\n"
        "Anatomy is the MNI152 2009 template aged by ventricle widening and cortical\n"
        "thinning, varied per subject (head size, smooth deformation), placed in a random\n"
        "pose with a scalp and skull, and acquired with site-specific grids and effects.\n"
        "The true brain ages are in derivatives/simulation/ (pipelines must not read it).\n"
    )
