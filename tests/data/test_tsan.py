"""TSAN layout: ids matched exactly, 0 = female by default."""

from __future__ import annotations

import pytest

from brainage.data.sources import load_cohort, read_cohort
from brainage.data.tsan import index_images, match_image
from brainage.errors import ValidationError


def _problems(source, **kwargs):
    with pytest.raises(ValidationError) as info:
        load_cohort(source, format="tsan", **kwargs)
    return info.value.problems


@pytest.fixture
def tsan(tmp_path, nifti, tsv):
    root = tmp_path / "tsan"
    for split, name in (("train", "sub-1"), ("train", "sub-10_T1w"), ("val", "OAS1_0002_MR1")):
        nifti(root / "images" / split / f"{name}.nii.gz")
    tsv(root / "labels.csv", [["id", "age", "sex"], ["sub-1", "70", "0"], ["sub-10", "71.5", "1"],
                              ["OAS1_0002_MR1", "80", "1"]], sep=",")
    return root


def test_ids_match_exactly_never_by_substring(tsan):
    t = load_cohort(tsan / "labels.csv", format="tsan").table
    names = [p.rsplit("/", 1)[1] for p in t["path"]]
    assert list(t["participant_id"]) == ["sub-1", "sub-10", "OAS1_0002_MR1"]
    assert names == ["sub-1.nii.gz", "sub-10_T1w.nii.gz", "OAS1_0002_MR1.nii.gz"]
    assert list(t["sex"]) == ["F", "M", "M"]  # TSAN's 0 = female
    assert list(t["age"]) == [70.0, 71.5, 80.0]


def test_match_image_rules(tsan):
    index = index_images(tsan / "images")
    assert [p.name for p in match_image("sub-1", index)] == ["sub-1.nii.gz"]
    assert match_image("sub-", index) == [] and match_image("OAS1_0002_MR", index) == []
    assert [p.name for p in match_image("OAS1", index)] == ["OAS1_0002_MR1.nii.gz"]


def test_id_without_its_own_image_is_a_problem(tsan):
    (tsan / "images" / "train" / "sub-1.nii.gz").unlink()  # only sub-10 is left
    (problem,) = _problems(tsan / "labels.csv")
    assert (problem.row, problem.value, problem.column) == (1, "sub-1", "participant_id")
    assert "found: none" in problem.expected


def test_several_images_for_one_id(tsan, nifti):
    nifti(tsan / "images" / "val" / "sub-1_run-2.nii.gz")
    nifti(tsan / "images" / "val" / "sub-10_T2w.nii.gz")
    problems = _problems(tsan / "labels.csv")
    assert [p.value for p in problems] == ["sub-10"]  # sub-1 still has its exact-name image


def test_folder_source_image_dir_and_notes(tsan, nifti):
    nifti(tsan / "images" / "test" / "sub-99.nii.gz")
    report = read_cohort(tsan, format="tsan", image_dir=tsan / "images")
    assert len(report.cohort) == 3
    assert any("1 image(s)" in n for n in report.notes)


def test_declared_convention_and_bad_values(tsan, tsv):
    cohort = load_cohort(tsan / "labels.csv", format="tsan", sex_codes="0=male")
    assert list(cohort.table["sex"]) == ["M", "F", "F"]
    tsv(tsan / "labels.csv", [["id", "age", "sex"], ["sub-1", "seventy", "0"],
                              ["sub-10", "71", "2"], ["sub-1", "70", "0"]], sep=",")
    problems = _problems(tsan / "labels.csv")
    assert {(p.row, p.column) for p in problems} == {(1, "age"), (2, "sex"), (3, None)}


def test_labels_and_missing_table(tsan, tmp_path):
    t = load_cohort(tsan / "labels.csv", format="tsan", participant_labels=["sub-10"]).table
    assert list(t["participant_id"]) == ["sub-10"]
    (tmp_path / "empty").mkdir()
    (problem,) = _problems(tmp_path / "empty")
    assert "one .csv/.tsv table" in problem.expected


def test_tsan_is_never_guessed(tsan):
    with pytest.raises(ValidationError, match="'path' column"):
        load_cohort(tsan / "labels.csv")
