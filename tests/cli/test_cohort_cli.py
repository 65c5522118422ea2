"""``brainage cohort check``: summary on success, every problem and exit 2 on failure."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from brainage.cli.cohort import register


def _nifti(path: Path, shape=(9, 10, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), path)


@pytest.fixture
def bids(tmp_path) -> Path:
    root = tmp_path / "bids"
    for label in ("01", "02", "03"):
        _nifti(root / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
    (root / "participants.tsv").write_text(
        "participant_id\tage\tsex\tsite\n"
        "sub-01\t20\tF\tA\nsub-02\t40\tM\tB\nsub-03\t60\tF\tA\n"
    )
    return root


def _check(*args: str):
    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, ["cohort", "check", *args])


def test_success_prints_summary_and_writes_the_table(bids, tmp_path):
    out = tmp_path / "out" / "cohort.tsv"
    result = _check(str(bids), "--write", str(out))
    assert result.exit_code == 0, result.output
    assert "scans 3, subjects 3" in result.stdout
    assert "age range 20.0-60.0 y, mean 40.0, SD 20.0" in result.stdout
    assert "per site: A: 2, B: 1" in result.stdout and "problems: 0" in result.stdout
    assert "warning" not in result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 4 and lines[0].startswith("participant_id\tsession\trun\tpath")


def test_listed_participant_without_image_fails_check(bids, tmp_path):
    with (bids / "participants.tsv").open("a") as f:
        f.write("sub-04\t70\tM\tB\n")
    out = tmp_path / "cohort.tsv"
    result = _check(str(bids), "--write", str(out))
    assert result.exit_code == 2 and not out.exists()
    assert "participants.tsv, row 4 (sub-04), column 'participant_id'" in result.stderr
    assert "expected a T1w image for every listed participant" in result.stderr


def test_subject_without_row_is_a_warning_and_kept(bids):
    _nifti(bids / "sub-05" / "anat" / "sub-05_T1w.nii.gz")
    result = _check(str(bids))
    assert result.exit_code == 0, result.output
    assert "scans 4, subjects 4" in result.stdout
    assert "warning: 1 participant(s) with a T1w image but no row in participants.tsv" \
        in result.stderr and "sub-05" in result.stderr


def test_failure_lists_every_problem_exits_2_and_writes_nothing(bids, tmp_path):
    (bids / "participants.tsv").write_text(
        "participant_id\tage\tsex\nsub-01\tabc\tF\nsub-02\t150\tQ\nsub-03\t30\tF\n")
    _nifti(bids / "sub-03" / "anat" / "sub-03_T1w.nii.gz", shape=(9, 10, 8, 4))
    out = tmp_path / "cohort.tsv"
    result = _check(str(bids), "--write", str(out), "--require-site")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "5 problem(s)" in result.stderr
    for text in ("row 1 (sub-01), column 'age': got 'abc'",
                 "row 2 (sub-02), column 'age': got '150'", "row 2 (sub-02), column 'sex': got 'Q'",
                 "sub-03_T1w.nii.gz (sub-03): got", "4 volumes", "'site' column"):
        assert text in result.stderr
    assert not out.exists() and list(tmp_path.glob("*.tsv")) == []


def test_participant_labels_and_sex_codes(bids):
    (bids / "participants.tsv").write_text(
        "participant_id\tage\tsex\nsub-01\t20\t1\nsub-02\t40\t2\nsub-03\t60\t1\n")
    assert _check(str(bids)).exit_code == 2
    result = _check(str(bids), "--sex-codes", "1=male,2=female",
                    "--participant-label", "01", "--participant-label", "sub-02")
    assert result.exit_code == 0, result.output
    assert "scans 2" in result.stdout and "per sex: F: 1, M: 1" in result.stdout


def test_bad_options_exit_2_with_a_suggestion(bids):
    result = _check(str(bids), "--format", "tabel")
    assert result.exit_code == 2 and "did you mean 'table'" in result.stderr
    result = _check(str(bids / "nowhere"))
    assert result.exit_code == 2 and "an existing folder or table" in result.stderr


def test_plain_table_and_tsan(tmp_path):
    _nifti(tmp_path / "img" / "s1.nii.gz")
    _nifti(tmp_path / "img" / "s10.nii.gz")
    (tmp_path / "t.csv").write_text(
        "id,age,sex,path\ns1,30,0,img/s1.nii.gz\ns10,31,1,img/s10.nii.gz\n")
    result = _check(str(tmp_path / "t.csv"), "--sex-codes", "0=female")
    assert result.exit_code == 0, result.output
    assert "per sex: F: 1, M: 1" in result.stdout
    result = _check(str(tmp_path / "t.csv"), "--format", "tsan", "--image-dir",
                    str(tmp_path / "img"))
    assert result.exit_code == 0, result.output
    assert "scans 2" in result.stdout


def _participants(root: Path, age: str = "30", sex: str = "F", site: str = "A") -> None:
    (root / "participants.tsv").write_text(
        "participant_id\tage\tsex\tsite\nsub-01\t20\tF\tA\n"
        f"sub-02\t{age}\t{sex}\t{site}\nsub-03\t60\tM\tB\n")


def _zero_zoom(path: Path) -> None:
    img = nib.Nifti1Image(np.zeros((9, 10, 8), np.uint8), np.eye(4))
    img.header["pixdim"][1] = 0.0
    nib.save(img, path)


T1 = Path("sub-02") / "anat" / "sub-02_T1w.nii.gz"
INVALID = {
    "age not a number": (lambda r: _participants(r, age="abc"), "row 2 (sub-02), column 'age': got 'abc'"),
    "age too high": (lambda r: _participants(r, age="150"), "got '150'; expected a number"),
    "negative age": (lambda r: _participants(r, age="-3"), "got '-3'; expected a number"),
    "unknown sex": (lambda r: _participants(r, sex="U"), "column 'sex': got 'U'"),
    "numeric sex": (lambda r: _participants(r, sex="1"), "--sex-codes"),
    "missing site": (lambda r: _participants(r, site="n/a"), "row 2 (sub-02), column 'site'"),
    "not a NIfTI": (lambda r: (r / T1).write_text("text"), "expected a readable NIfTI image"),
    "4D image": (lambda r: _nifti(r / T1, shape=(9, 10, 8, 2)), "2 volumes"),
    "zero voxel size": (lambda r: _zero_zoom(r / T1), "voxel sizes (0.0, 1.0, 1.0)"),
    "duplicate scan": (lambda r: _nifti(r / "sub-02" / "anat" / "sub-02_T1w.nii"),
                       "each scan listed once"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_each_invalid_case_fails_with_its_message(bids, tmp_path, case):
    _participants(bids)
    break_it, message = INVALID[case]
    break_it(bids)
    out = tmp_path / "written.tsv"
    result = _check(str(bids), "--require-site", "--write", str(out))
    assert result.exit_code == 2, result.output
    assert "1 problem(s)" in result.stderr and message in result.stderr
    assert result.stdout == "" and not out.exists()


def test_missing_image_in_a_table(tmp_path):
    _nifti(tmp_path / "a.nii.gz")
    (tmp_path / "t.tsv").write_text("path\tage\na.nii.gz\t30\nb.nii.gz\t40\n")
    out = tmp_path / "written.tsv"
    result = _check(str(tmp_path / "t.tsv"), "--write", str(out))
    assert result.exit_code == 2 and not out.exists()
    assert f"t.tsv, row 2 (b), column 'path': got '{tmp_path / 'b.nii.gz'}'" in result.stderr
