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

SESSIONS_JSON: dict[str, Any] = {
    "session_id": {"Description": "Session identifier (ses-<k>)."},
    "age": {"Description": "Chronological age at the session.", "Units": "year"},
}

#: The simulator's anatomy source (``SourceDatasets`` of the raw dataset).
TEMPLATE_URL = "https://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009"

#: The ground truth's own files, not defined by BIDS (its ``.bidsignore``).
TRUTH_IGNORE = ("/ground_truth.tsv", "/ground_truth.json")

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
        "SourceDatasets": [{"URL": TEMPLATE_URL}],
    }


def truth_description(version: str) -> dict[str, Any]:
    """dataset_description.json of the ground-truth derivative."""
    return {
        "Name": "Simulation ground truth (true brain age, site parameters)",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "brainage", "Version": version,
                         "Description": f"brainage simulate (simulator version "
                                        f"{SIMULATOR_VERSION}): the truth behind the scans"}],
        "SourceDatasets": [{"URL": TEMPLATE_URL}],
        "DatasetLinks": {"raw": "../../"},
    }


def truth_columns() -> dict[str, Any]:
    """``ground_truth.json``'s column descriptions in the BIDS form (Description, Units)."""
    return {name: {"Description": text, **({"Units": _UNITS[name]} if name in _UNITS else {})}
            for name, text in TRUTH_COLUMNS.items()}


_UNITS = {"age": "year", "brain_age": "year", "gap": "year", "ventricle_strength": "mm^2",
          **{f"rotation_{a}": "degree" for a in "xyz"}, **{f"shift_{a}": "mm" for a in "xyz"}}


def truth_mask_sidecar(image: str) -> dict[str, Any]:
    """Sidecar of a true brain mask on the grid of the raw T1w `image` (dataset-relative)."""
    return {"Description": "True brain mask drawn by the simulator with the scan (not computed "
                           "from the image).", "Type": "Brain",
            "SpatialReference": f"bids:raw:{image}"}


def truth_readme(config: SimulationConfig) -> str:
    """README of the ground-truth derivative."""
    return (
        f"Ground truth of the brainage synthetic aging cohort (seed {config.seed}): the true\n"
        "brain age and the anatomy and site parameters of every scan (ground_truth.tsv, its\n"
        "columns in ground_truth.json), and with --masks the true brain masks.\n"
        "Pipelines must not read it; it scores them.\n"
    )


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
