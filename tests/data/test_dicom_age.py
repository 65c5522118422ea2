"""DICOM age and sex as headers are found in the wild, and the rule that gave each (issue 24).

Every PatientAge form is written into a real pydicom series and read back through the same
path ``predict`` uses; ``parse_age`` and the age rules also get property-based tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from dicom_helpers import ramp_volume, write_series
from hypothesis import given, settings
from hypothesis import strategies as st

from brainage.data import dicom, dicom_age
from brainage.data.dicom_age import DicomAgeWarning
from brainage.data.scans import AGE_NOTE, AGE_SOURCE, with_header_demographics

TINY = (4, 5, 2)  # two slices: only headers matter here
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=300)
UNITS = {"Y": 1.0, "M": 1 / 12, "W": 7 / 365.25, "D": 1 / 365.25}


def read(folder):
    """What ``predict`` reads from the header of the folder's series."""
    return dicom.scan_demographics(dicom.DicomScan(folder))


def series(tmp_path, name="s", *, age=None, sex="F", **header):
    return write_series(tmp_path / name, ramp_volume(TINY), age=age, sex=sex, header=header)


# ---------------------------------------------------------------- PatientAge forms, in series
@pytest.mark.parametrize(("text", "years", "bare"), [
    ("039Y", 39.0, False), ("39Y", 39.0, False), ("39", 39.0, True), ("039 Y", 39.0, False),
    ("39.5", 39.5, True), ("006M", 0.5, False), ("010W", 0.1916, False),
    ("020D", 0.0548, False), ("039y", 39.0, False), ("006m", 0.5, False), ("7", 7.0, True),
    ("000Y", 0.0, False), ("45 years", 45.0, False),
])
def test_every_patient_age_form_in_a_series_gives_its_age(tmp_path, text, years, bare):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no date disagreement, no pydicom noise on reading
        got = read(series(tmp_path, age=text))
    assert got["age"] == pytest.approx(years, abs=1e-4)
    assert got["age_source"] == "PatientAge"
    if bare:
        assert got["age_note"] == f"PatientAge {text!r} has no unit letter: read as {years:g} years"
    else:
        assert got["age_note"] is None


@pytest.mark.parametrize("text", ["abcY", "39Q", "-5Y", "Y", "39Y40", "200Y", "99999D"])
def test_an_unusable_patient_age_falls_back_to_the_dates(tmp_path, text):
    got = read(series(tmp_path, age=text, PatientBirthDate="19800102", StudyDate="20200102"))
    assert got["age"] == pytest.approx(40.0, abs=0.01) and got["age_source"] == "dates"
    assert got["age_note"].startswith(f"PatientAge {text!r} unusable")
    assert got["age_note"].endswith("age from StudyDate 20200102 - PatientBirthDate 19800102")


def test_no_patient_age_falls_back_to_study_then_acquisition_then_series_date(tmp_path):
    birth = {"PatientBirthDate": "19800101"}
    study = read(series(tmp_path, "a", StudyDate="20000101", AcquisitionDate="20100101",
                        SeriesDate="20200101", **birth))
    assert study["age"] == pytest.approx(20.0, abs=0.01)
    assert study["age_note"] == "no PatientAge: age from StudyDate 20000101 - PatientBirthDate 19800101"
    acq = read(series(tmp_path, "b", StudyDate=None, AcquisitionDate="20100101",
                      SeriesDate="20200101", **birth))
    assert acq["age"] == pytest.approx(30.0, abs=0.01) and "AcquisitionDate 20100101" in acq["age_note"]
    ser = read(series(tmp_path, "c", StudyDate="2010XX01", SeriesDate="20200101", **birth))
    assert ser["age"] == pytest.approx(40.0, abs=0.01) and "SeriesDate 20200101" in ser["age_note"]
    assert {study["age_source"], acq["age_source"], ser["age_source"]} == {"dates"}


def test_old_dotted_dates_are_read(tmp_path):
    got = read(series(tmp_path, PatientBirthDate="1980.01.02", StudyDate="2020.01.02"))
    assert got["age"] == pytest.approx(40.0, abs=0.01) and got["age_source"] == "dates"


@pytest.mark.parametrize("birth", [None, "", "00000000", "19801350", "21000101"])
def test_no_usable_age_at_all_is_none_and_says_why(tmp_path, birth):
    got = read(series(tmp_path, age=None, PatientBirthDate=birth))
    assert got["age"] is None and got["age_source"] == "none"
    assert got["age_note"] == ("no PatientAge, and no usable PatientBirthDate with a "
                               "StudyDate/AcquisitionDate/SeriesDate")


def test_patient_age_wins_over_disagreeing_dates_with_a_warning(tmp_path):
    folder = series(tmp_path, age="039Y", PatientBirthDate="19900101", StudyDate="20240102")
    with pytest.warns(DicomAgeWarning, match=r"s: PatientAge '039Y' gives 39 years but StudyDate "
                      r"20240102 - PatientBirthDate 19900101 gives 34\.0, more than 1 year apart; "
                      r"PatientAge used.*Fix: .*participants table"):
        got = read(folder)
    assert got["age"] == 39.0 and got["age_source"] == "PatientAge"
    assert "anonymisers often shift or zero birth dates" in got["age_note"]


def test_patient_age_and_dates_within_a_year_agree_silently(tmp_path):
    folder = series(tmp_path, age="043Y", PatientBirthDate="19800601", StudyDate="20240102")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read(folder)  # 43.6 years by the dates: PatientAge 43 is their floor
    assert got == {"age": 43.0, "age_source": "PatientAge", "age_note": None, "sex": "F",
                   "patient_id": "P001"}


def test_a_zeroed_birth_date_is_no_date_and_no_warning(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = read(series(tmp_path, age="039Y", PatientBirthDate="00000000"))
    assert got["age"] == 39.0 and got["age_note"] is None


# ---------------------------------------------------------------- PatientSex
@pytest.mark.parametrize(("value", "sex"), [("F", "F"), ("M", "M"), ("f", "F"), ("m ", "M"),
                                            ("O", None), ("o", None), ("", None), (None, None)])
def test_patient_sex_f_m_o_and_blank(tmp_path, value, sex):
    got = read(series(tmp_path, age="039Y", sex=value))
    assert got["sex"] == sex and got["age_note"] is None


def test_an_unknown_patient_sex_is_unknown_and_noted(tmp_path):
    got = read(series(tmp_path, age="039Y", sex="X"))
    assert got["sex"] is None and got["age_note"] == "PatientSex 'X' is not F/M/O: sex unknown"


# ---------------------------------------------------------------- a participants table overrides
@pytest.fixture
def folders(tmp_path):
    return {"plain": series(tmp_path, "p", age="039Y", sex="F"),
            "bare": series(tmp_path, "b", age="41", sex="M"),
            "dates": series(tmp_path, "d", age=None, sex="O", PatientBirthDate="19800102",
                            StudyDate="20200102"),
            "clash": series(tmp_path, "c", age="039Y", PatientBirthDate="19900101",
                            StudyDate="20240102"),
            "nothing": series(tmp_path, "n", age=None, sex=None)}


def test_a_participants_table_overrides_the_header_and_says_so(folders, tmp_path):
    table = pd.DataFrame({
        "path": [str(folders[k]) for k in ("plain", "bare", "dates", "nothing")]
                + [str(tmp_path / "x.nii.gz"), str(tmp_path / "y.nii.gz")],
        "age": [50.0, np.nan, np.nan, np.nan, 30.0, np.nan],
        "sex": ["M", pd.NA, "F", pd.NA, "F", pd.NA]})
    out = with_header_demographics(table)
    assert out[AGE_SOURCE].tolist() == ["participants.tsv", "PatientAge", "dates", "none",
                                        "participants.tsv", "none"]
    assert out["age"].tolist()[:5] == pytest.approx([50.0, 41.0, 40.0, np.nan, 30.0],
                                                    abs=0.01, nan_ok=True)
    assert out["sex"].tolist()[:3] == ["M", "M", "F"] and pd.isna(out["sex"][3])
    notes = out[AGE_NOTE].tolist()
    assert notes[0] == ("participants table age 50 overrides the DICOM header's 39 (PatientAge); "
                        "participants table sex M overrides PatientSex F")
    assert notes[1] == "PatientAge '41' has no unit letter: read as 41 years"
    assert notes[2].startswith("no PatientAge: age from StudyDate 20200102")
    assert notes[3].startswith("no PatientAge, and no usable PatientBirthDate")
    assert pd.isna(notes[4]) and pd.isna(notes[5])


def test_a_table_age_silences_the_header_disagreement(folders):
    table = pd.DataFrame({"path": [str(folders["clash"])], "age": [36.0]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = with_header_demographics(table)
    assert out["age"][0] == 36.0 and out[AGE_SOURCE][0] == "participants.tsv"
    table = pd.DataFrame({"path": [str(folders["clash"])]})
    with pytest.warns(DicomAgeWarning, match="PatientAge used"):
        out = with_header_demographics(table)
    assert out["age"][0] == 39.0 and out[AGE_SOURCE][0] == "PatientAge"


def test_a_table_of_nifti_scans_gets_no_new_column(tmp_path):
    out = with_header_demographics(pd.DataFrame({"path": [str(tmp_path / "x.nii.gz")],
                                                 "age": [30.0]}))
    assert AGE_SOURCE not in out and AGE_NOTE not in out and out["age"][0] == 30.0


def test_an_unusable_dicom_folder_has_no_age(tmp_path):
    write_series(tmp_path / "two" / "a", ramp_volume(TINY), description="T1 MPRAGE", number=2)
    write_series(tmp_path / "two" / "b", ramp_volume(TINY), description="T1 SPGR", number=6)
    out = with_header_demographics(pd.DataFrame({"path": [str(tmp_path / "two")]}))
    assert out[AGE_SOURCE][0] == "none" and np.isnan(out["age"][0])


# ---------------------------------------------------------------- properties
@st.composite
def age_strings(draw):
    """``(text, years, has unit)``: 0-120 in any unit, padding, spacing and case."""
    n = draw(st.integers(0, 120))
    unit = draw(st.sampled_from(["Y", "M", "W", "D", ""]))
    digits = str(n).zfill(len(str(n)) + draw(st.integers(0, 3)))
    space = draw(st.sampled_from(["", " ", "  "])) if unit else ""
    unit = unit.lower() if draw(st.booleans()) else unit
    pad = draw(st.sampled_from(["", " ", "\t"]))
    return f"{pad}{digits}{space}{unit}{pad}", round(n * UNITS[(unit or "Y").upper()], 4), bool(unit)


@PROPERTY
@given(age_strings())
def test_any_integer_age_in_any_form_maps_to_its_years(case):
    text, years, has_unit = case
    got, note = dicom_age.read_patient_age(text)
    assert got == years and dicom.parse_age(text) == years
    assert (note is None) == has_unit
    if not has_unit:
        assert "no unit letter: read as" in note


@PROPERTY
@given(st.integers(0, 1200))
def test_any_decimal_number_is_years(tenths):
    assert dicom.parse_age(f"{tenths / 10:.1f}") == pytest.approx(tenths / 10, abs=1e-9)


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=40))
def test_text_without_digits_is_no_age(text):
    assert dicom.parse_age(text) is None


@PROPERTY
@given(st.one_of(st.text(max_size=60), st.binary(max_size=20), st.none(), st.integers(),
                 st.floats(), st.lists(st.text(max_size=4), max_size=3)))
def test_garbage_never_raises_and_never_gives_an_impossible_age(value):
    years, note = dicom_age.read_patient_age(value)
    assert years is None or 0 <= years <= dicom_age.MAX_YEARS
    assert note is None or isinstance(note, str)
    assert dicom.parse_age(value) == years


@PROPERTY
@given(st.dates(min_value=pd.Timestamp("1900-01-01").date(),
                max_value=pd.Timestamp("2020-01-01").date()),
       st.integers(0, 100 * 365))
def test_dates_give_the_days_between_in_years(birth, days):
    study = birth + pd.Timedelta(days=days).to_pytimedelta()
    b, s = birth.strftime("%Y%m%d"), study.strftime("%Y%m%d")
    assert dicom.age_from_dates(b, s) == pytest.approx(days / 365.25, abs=1e-4)
    got = dicom_age.header_age({"PatientBirthDate": b, "StudyDate": s})
    assert got["age_source"] == "dates" and got["age"] == dicom.age_from_dates(b, s)
    backwards = dicom.age_from_dates(s, b)  # birth after the study: no age
    assert backwards is None if days else backwards == 0.0


@PROPERTY
@given(st.integers(0, 100), st.integers(0, 100 * 365))
def test_patient_age_always_wins_and_warns_only_on_a_disagreement(n, days):
    header = {"PatientAge": f"{n:03d}Y", "PatientBirthDate": "19000101",
              "StudyDate": (pd.Timestamp("1900-01-01") + pd.Timedelta(days=days)).strftime("%Y%m%d")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = dicom_age.header_age(header)
    assert got["age"] == n and got["age_source"] == "PatientAge"
    disagree = abs(days / 365.25 - n) > 1.0001
    agree = abs(days / 365.25 - n) < 0.9999
    if disagree:
        assert [w.category for w in caught] == [DicomAgeWarning] and "apart" in got["age_note"]
    elif agree:
        assert caught == [] and got["age_note"] is None
