"""Value parsing and header-level image checks."""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from brainage.data.headers import flat_issues, npy_issues
from brainage.data.nifti_header import nifti_issues
from brainage.data.table_values import parse_ages, parse_ints, parse_sex
from brainage.data.validate import ROW, WHERE, check_duplicates, check_images, check_site


def test_parse_ages_reports_every_bad_value_with_row_and_column():
    raw = pd.Series(["30.5", "abc", "n/a", "-3", "150", float("nan"), "inf", " 7 "])
    ages, problems = parse_ages(raw, "participants.tsv")
    assert [p.row for p in problems] == [2, 4, 5, 7]
    assert [p.value for p in problems] == ["abc", "-3", "150", "inf"]
    assert str(problems[0]) == (
        "participants.tsv, row 2, column 'age': got 'abc'; expected a number of years "
        "between 0 and 120. Fix: correct the value or write n/a if unknown"
    )
    assert ages[0] == 30.5 and ages[7] == 7.0
    assert ages[[1, 2, 3, 4, 5, 6]].isna().all()


def test_parse_ages_accepts_the_bounds():
    ages, problems = parse_ages(pd.Series(["0", "120"]), "t.tsv")
    assert problems == [] and list(ages) == [0.0, 120.0]


def test_parse_sex_spellings_and_numeric_conventions():
    sex, problems = parse_sex(pd.Series(["F", "male", "Female", "m", "n/a"]), "t.tsv")
    assert problems == [] and list(sex.fillna("-")) == ["F", "M", "F", "M", "-"]
    sex, problems = parse_sex(pd.Series(["0", "1"]), "t.tsv", numeric="0=female")
    assert problems == [] and list(sex) == ["F", "M"]


def test_parse_sex_numeric_without_convention_asks_for_one():
    _, problems = parse_sex(pd.Series(["F", "1"]), "t.tsv")
    assert len(problems) == 1 and problems[0].row == 2
    assert "--sex-codes" in problems[0].fix


def test_parse_sex_unknown_code():
    _, problems = parse_sex(pd.Series(["X", "3"]), "t.tsv", numeric="0=female")
    assert [p.value for p in problems] == ["X", "3"]
    assert all(p.column == "sex" for p in problems)


def test_parse_ints():
    runs, problems = parse_ints(pd.Series(["1", "2.0", "x", "0", None]), "t.tsv")
    assert list(runs[:2]) == [1, 2] and [p.row for p in problems] == [3, 4]
    index, problems = parse_ints(pd.Series(["0", "-1"]), "t.tsv", "array_index", minimum=0)
    assert index[0] == 0 and [p.value for p in problems] == ["-1"]


def test_valid_nifti_has_no_issues(tmp_path, nifti):
    assert nifti_issues(nifti(tmp_path / "a.nii.gz")) == []
    assert nifti_issues(nifti(tmp_path / "b.nii")) == []
    assert nifti_issues(nifti(tmp_path / "c.nii.gz", shape=(9, 10, 8, 1))) == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.nii.gz", "an existing image file"),
        (lambda d: _text(d / "notes.txt"), "a NIfTI image (.nii or .nii.gz)"),
        (lambda d: _text(d / "fake.nii"), "a readable NIfTI image"),
        (lambda d: _text(d / "fake.nii.gz"), "a readable NIfTI image"),
        (lambda d: _gz(d / "short.nii.gz", b"\x5c\x01\x00\x00" + b"\0" * 50), "a readable NIfTI"),
    ],
)
def test_unreadable_or_not_nifti(tmp_path, make, expected):
    issues = nifti_issues(make(tmp_path))
    assert len(issues) == 1 and issues[0][0].startswith(expected)


def _text(path: Path) -> Path:
    path.write_text("not an image")
    return path


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def test_4d_with_several_volumes_and_2d_are_rejected(tmp_path, nifti):
    (issue,) = nifti_issues(nifti(tmp_path / "fmri.nii.gz", shape=(9, 10, 8, 3)))
    assert "single volume" in issue[0] and "3 volumes" in issue[2]
    (issue,) = nifti_issues(nifti(tmp_path / "slice.nii.gz", shape=(6, 7)))
    assert issue[0] == "a 3D image" and "(6, 7)" in issue[2]


@pytest.mark.parametrize("bad", [0.0, float("nan"), float("inf")])
def test_zero_or_non_finite_voxel_sizes(tmp_path, bad):
    img = nib.Nifti1Image(np.zeros((9, 10, 8), np.uint8), np.eye(4))
    img.header["pixdim"][2] = bad  # nib.load would silently turn a 0 into 1
    path = tmp_path / "zooms.nii.gz"
    nib.save(img, path)
    (issue,) = nifti_issues(path)
    assert issue[0].startswith("finite, positive voxel sizes")


def test_npy_issues(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, np.zeros((1, 6, 7, 5), np.float32))
    assert npy_issues(good) == [] and npy_issues(good, (1, 6, 7, 5)) == []
    assert "shape (1, 6, 7, 5)" in npy_issues(good, (1, 121, 145, 121))[0][2]
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert npy_issues(obj)[0][0] == "a readable .npy array"
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:200])
    assert npy_issues(cut)[0][0] == "a readable .npy array"


def test_flat_issues_checks_dims_and_rows(tmp_path):
    flat = tmp_path / "train.npy"
    np.save(flat, np.zeros((4, 10), np.float32))
    assert flat_issues(flat, 4) == []
    assert "4 rows" in flat_issues(flat, 3)[0][2]
    assert flat_issues(flat, 3, at_least=True) == []
    np.save(flat, np.zeros((4, 10, 2), np.float32))
    assert flat_issues(flat, 4)[0][0].startswith("a 2D array")


def _table(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {"participant_id": [f"sub-{i}" for i in range(n)], "session": [pd.NA] * n,
            "run": [pd.NA] * n, "path": [f"/d/{i}.nii.gz" for i in range(n)],
            WHERE: ["t.tsv"] * n, ROW: list(range(1, n + 1))}
    base.update(cols)
    return pd.DataFrame(base)


def test_duplicates_name_both_rows():
    table = _table(participant_id=["sub-1", "sub-2", "sub-1"])
    (problem,) = check_duplicates(table, row_per_scan=True)
    assert problem.row == 3 and "t.tsv, row 1" in problem.expected
    assert problem.value == "participant_id=sub-1"


def test_acq_and_run_keep_rows_distinct():
    table = _table(participant_id=["sub-1"] * 3, run=[1, 2, 3], acq=["a", "a", "b"])
    assert check_duplicates(table, row_per_scan=False) == []


def test_scans_told_apart_only_by_acq_are_refused():
    """Outputs are named sub/ses/run: acq-a and acq-b of one run would overwrite each other."""
    table = _table(participant_id=["sub-1"] * 3, run=[1, 2, 1], acq=["a", "a", "b"])
    (problem,) = check_duplicates(table, row_per_scan=False)
    assert problem.where == "/d/2.nii.gz" and "/d/0.nii.gz" in problem.expected
    assert "acq-b vs acq-a" in problem.expected and "run-<n>" in problem.fix


def test_same_image_listed_twice_is_a_duplicate():
    table = _table(path=["/d/x.nii.gz", "/d/x.nii.gz"])
    (problem,) = check_duplicates(table, row_per_scan=True)
    assert "image listed once" in problem.expected


def test_site_required():
    table = _table(site=["A", pd.NA, pd.NA])
    problems = check_site(table, "src")
    assert [p.row for p in problems] == [2, 3] and all(p.column == "site" for p in problems)
    (problem,) = check_site(_table(site=[pd.NA, pd.NA]), "src")
    assert problem.where == "src" and "'site' column" in problem.expected


def test_check_images_points_at_table_rows_when_paths_were_listed(tmp_path, nifti):
    good = nifti(tmp_path / "good.nii.gz")
    table = _table(path=[str(good), str(tmp_path / "gone.nii.gz")])
    (problem,) = check_images(table, paths_listed=True)
    assert (problem.where, problem.row, problem.column) == ("t.tsv", 2, "path")
    assert problem.value == str(tmp_path / "gone.nii.gz")
    (problem,) = check_images(table, paths_listed=False)
    assert problem.where == str(tmp_path / "gone.nii.gz") and problem.row is None
