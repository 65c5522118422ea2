"""``prepare`` takes DICOM folders listed in a cohort table, with their series (issue 15)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from dicom_helpers import ramp_volume, write_series  # noqa: E402

from brainage.data.cohort import Cohort  # noqa: E402
from brainage.preprocessing.runner import run_cohort  # noqa: E402


def test_dicom_folders_are_prepared_with_the_series_asked_for(tmp_path, small_spec,
                                                               fake_pipeline):
    study = tmp_path / "study"
    write_series(study / "t1", ramp_volume((24, 28, 20)), description="T1 MPRAGE", number=3)
    write_series(study / "t2", ramp_volume((24, 28, 12)), description="T2 TSE", number=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    cohort = Cohort(pd.DataFrame({
        "participant_id": ["sub-01", "sub-02", "sub-03"],
        "path": [str(study), str(study), str(empty)], "dicom_series": [None, "4", None]}))
    summary = run_cohort(cohort, tmp_path / "out", small_spec, progress=False)
    assert sorted(fake_pipeline) == sorted([str(study), f"{study} (series 4)", str(empty)])
    assert dict(summary.failed).keys() == {"sub-03"}
    index = pd.read_csv(tmp_path / "out" / "index.tsv", sep="\t").set_index("scan")
    assert index.loc["sub-01", "status"] == "ok" and index.loc["sub-02", "status"] == "ok"
    assert "a folder with no DICOM file" in index.loc["sub-03", "error"]
