"""Fixtures for the preprocessing tests (helpers live in prep_helpers.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from prep_helpers import SHAPE, blob, fake_preprocess, write_nifti

from brainage.data.cohort import Cohort
from brainage.preprocessing import pipeline
from brainage.preprocessing.spec import PreprocessingSpec


@pytest.fixture
def small_spec() -> PreprocessingSpec:
    return PreprocessingSpec.create("8mm:20x24x18")


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace the registration pipeline by :func:`fake_preprocess` (in this process)."""
    calls: list[str] = []

    def wrapped(source, spec, name=None):
        calls.append(str(source))
        return fake_preprocess(source, spec, name)

    monkeypatch.setattr(pipeline, "preprocess", wrapped)
    return calls


@pytest.fixture
def mixed_cohort(tmp_path) -> Cohort:
    """Three good scans and five bad ones (missing, empty, NaN, 2D, 4D, absurd voxels)."""
    raw = tmp_path / "raw"
    nan = blob()
    nan[:] = np.nan
    four_d = np.stack([blob(), blob()], axis=-1)
    files = {
        "01": write_nifti(raw / "01.nii.gz", blob(seed=1)),
        "02": write_nifti(raw / "02.nii.gz", blob(seed=2)),
        "10": write_nifti(raw / "10.nii.gz", blob(seed=3)),
        "empty": write_nifti(raw / "empty.nii.gz", np.zeros(SHAPE, np.float32)),
        "nan": write_nifti(raw / "nan.nii.gz", nan),
        "flat": write_nifti(raw / "flat.nii.gz", blob()[:, :, 0]),
        "fourd": write_nifti(raw / "fourd.nii.gz", four_d),
        "huge": write_nifti(raw / "huge.nii.gz", blob(), zooms=(2.0, 2.0, 40.0)),
        "missing": raw / "missing.nii.gz",
    }
    df = pd.DataFrame({"participant_id": [f"sub-{k}" for k in files],
                       "path": [str(p) for p in files.values()]})
    return Cohort(df, str(raw))
