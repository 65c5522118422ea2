"""DICOM folders as scans: series picking, header ages, dcm2niix conversion (issue 15)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from dicom_helpers import ramp_volume, write_series

from brainage.data import dicom, dicom_convert
from brainage.data.headers import image_issues
from brainage.data.scans import AGE_SOURCE, with_header_demographics
from brainage.errors import BrainAgeError, InputError
from brainage.preprocessing import steps

SHAPE = (24, 28, 20)  # X, Y, Z (20 slices): unequal axes so a swap fails


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A study of a T1w series (#3, 20 slices) and a T2w series (#4, 12 slices)."""
    root = tmp_path_factory.mktemp("dicom") / "study"
    write_series(root / "s3", ramp_volume(SHAPE), description="T1 MPRAGE", number=3)
    write_series(root / "s4", ramp_volume(SHAPE, seed=1)[:, :, :12], description="T2 TSE",
                 protocol="t2_tse_tra", number=4)
    (root / "DICOMDIR.txt").write_text("not a DICOM file")  # ignored
    return root


def test_conversion_keeps_shape_spacing_and_orientation(study):
    """dcm2niix output, in RAS+ order, is the volume as written (LPS rows/columns flipped)."""
    img = dicom_convert.load_dicom(study / "s3")
    assert img.shape == SHAPE
    np.testing.assert_allclose(img.header.get_zooms()[:3], (1.0, 1.2, 1.5), atol=1e-5)
    canon = nib.as_closest_canonical(img)
    written = ramp_volume(SHAPE)
    np.testing.assert_array_equal(np.asanyarray(canon.dataobj), written[::-1, ::-1, :])
    # voxel (0, 0, 0) was written at LPS (-12, -16, -14) = RAS (12, 16, -14)
    corner = canon.affine @ np.array([SHAPE[0] - 1, SHAPE[1] - 1, 0, 1])
    np.testing.assert_allclose(corner[:3], (12.0, 16.0, -14.0), atol=1e-3)


def test_the_t1w_series_of_a_study_is_picked_or_the_one_asked_for(study):
    assert [s.number for s in dicom.list_series(study)] == [3, 4]
    assert dicom.pick_series(study).description == "T1 MPRAGE"
    t2 = dicom.pick_series(study, "4")
    assert t2.protocol == "t2_tse_tra" and len(t2.files) == 12
    assert dicom.pick_series(study, t2.uid) == t2
    assert dicom_convert.load_dicom(study, "4").shape == (24, 28, 12)


def test_ambiguous_or_unknown_series_are_refused_with_the_listing(study, tmp_path):
    two = tmp_path / "two"
    write_series(two / "a", ramp_volume(SHAPE), description="T1 MPRAGE", number=2)
    write_series(two / "b", ramp_volume(SHAPE), description="sag SPGR", number=5)
    with pytest.raises(InputError, match=r"2 T1w-like series.*#2 'T1 MPRAGE'.*#5 'sag SPGR'"
                                         r".*--dicom-series NUMBER_OR_UID"):
        dicom.pick_series(two)
    with pytest.raises(InputError, match=r"no series '7'.*#3 .*#4 .*--dicom-series"):
        dicom.pick_series(study, 7)
    none = tmp_path / "none"
    write_series(none / "a", ramp_volume(SHAPE), description="FLAIR", number=1)
    write_series(none / "b", ramp_volume(SHAPE), description="T2 TSE", number=2)
    with pytest.raises(InputError, match="no series named like a T1w one"):
        dicom.pick_series(none)


def test_a_single_series_is_used_whatever_its_name(tmp_path):
    write_series(tmp_path / "one", ramp_volume(SHAPE), description="anat", number=9)
    assert dicom.pick_series(tmp_path / "one").number == 9


@pytest.mark.parametrize(("text", "years"), [("039Y", 39.0), ("006M", 0.5), ("026W", 0.4983),
                                             ("073D", 0.1999), ("39", 39.0), ("", None),
                                             ("abcY", None)])
def test_patient_age_strings(text, years):
    assert dicom.parse_age(text) == years


def test_age_from_dates_when_there_is_no_patient_age():
    assert dicom.age_from_dates("19800102", "20200102") == pytest.approx(40.0, abs=0.01)
    assert dicom.age_from_dates("", "20200102") is None
    assert dicom.age_from_dates("20210101", "20200102") is None


def test_header_gives_age_and_sex(study, tmp_path):
    assert dicom.scan_demographics(dicom.DicomScan(study)) == {
        "age": 39.0, "age_source": "PatientAge", "age_note": None, "sex": "F",
        "patient_id": "P001"}
    write_series(tmp_path / "o", ramp_volume(SHAPE), age="006M", sex="O")
    got = dicom.header_demographics(dicom.list_series(tmp_path / "o")[0].files)
    assert got["age"] == 0.5 and got["sex"] is None


def test_table_ages_win_and_header_ages_are_marked(study, tmp_path):
    nifti = tmp_path / "x.nii.gz"
    table = pd.DataFrame({"path": [str(study), str(study), str(nifti)],
                          "age": [50.0, np.nan, np.nan], "sex": ["M", pd.NA, pd.NA]})
    out = with_header_demographics(table)
    assert out["age"].tolist()[:2] == [50.0, 39.0] and np.isnan(out["age"][2])
    assert out["sex"].tolist()[:2] == ["M", "F"] and pd.isna(out["sex"][2])
    assert out[AGE_SOURCE].tolist() == ["participants.tsv", "PatientAge", "none"]


def test_load_image_converts_a_dicom_folder(study):
    img = steps.load_image(dicom.DicomScan(study, "3"))
    assert img.shape == SHAPE
    assert steps.load_image(study / "s4").shape == (24, 28, 12)  # one series: no choice


def test_a_series_for_a_nifti_path_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"x.nii.*not a folder of DICOM files.*--dicom-series"):
        dicom.scan_source(tmp_path / "x.nii", "3")


def test_failed_conversion_names_the_folder_and_series(study, monkeypatch):
    monkeypatch.setattr(dicom_convert, "dcm2niix_binary", lambda: "/bin/false")
    with pytest.raises(BrainAgeError, match=r"study.*dcm2niix failed on series #3 .*Fix"):
        dicom_convert.load_dicom(study)


def test_the_wheel_binary_is_found():
    import dcm2niix

    assert dicom_convert.dcm2niix_binary() == dcm2niix.bin


def test_cohort_check_accepts_dicom_folders_only(study, tmp_path):
    assert image_issues(study) == []
    (tmp_path / "empty").mkdir()
    [(expected, _fix, observed)] = image_issues(tmp_path / "empty")
    assert "folder of DICOM files" in expected and observed == "a folder with no DICOM file"


@pytest.mark.parametrize(("value", "text"), [(5, "5"), (5.0, "5"), ("5.0", "5"), (" 1.2.3 ", "1.2.3"),
                                             (None, None), (float("nan"), None), (pd.NA, None)])
def test_series_choices_read_from_tables(value, text):
    assert dicom.series_text(value) == text


def test_a_cohort_table_may_list_dicom_folders_and_their_series(study, tmp_path):
    from brainage.data.scans import row_source
    from brainage.data.sources import load_cohort

    table = tmp_path / "cohort.tsv"
    pd.DataFrame({"participant_id": ["sub-01", "sub-02"], "path": [str(study), str(study)],
                  "dicom_series": [np.nan, 4]}).to_csv(table, sep="\t", index=False)
    rows = load_cohort(table).table
    sources = [row_source(r) for _, r in rows.iterrows()]
    assert sources == [dicom.DicomScan(study, None), dicom.DicomScan(study, "4")]
    assert dicom.pick_series(study, sources[1].series).number == 4
