"""The plain-table reader, format detection and option checks."""

from __future__ import annotations

import pandas as pd
import pytest

from brainage.data.sources import detect_format, load_cohort
from brainage.errors import ValidationError


def _problems(source, **kwargs):
    with pytest.raises(ValidationError) as info:
        load_cohort(source, **kwargs)
    return info.value.problems


@pytest.fixture
def table_dir(tmp_path, nifti):
    for name in ("a.nii.gz", "b.nii", "scans/sub-07_ses-2_T1w.nii.gz"):
        nifti(tmp_path / "study" / name)
    return tmp_path / "study"


def test_relative_paths_resolve_against_the_table(table_dir, tsv, tmp_path, monkeypatch):
    table = tsv(table_dir / "cohort.csv", [["path", "Age", "Gender", "site", "scanner"],
                                            ["a.nii.gz", "20", "female", "S1", "X"],
                                            ["b.nii", "n/a", "M", "S2", "Y"]], sep=",")
    monkeypatch.chdir(tmp_path)  # somewhere else than the table
    t = load_cohort(table).table
    assert list(t["path"]) == [str(table_dir / "a.nii.gz"), str(table_dir / "b.nii")]
    assert list(t["participant_id"]) == ["a", "b"]  # from the file names
    assert list(t["sex"]) == ["F", "M"] and t["age"].iloc[0] == 20 and t["age"].isna().iloc[1]
    assert list(t["scanner"]) == ["X", "Y"]  # extra columns are kept


def test_ids_kept_as_written_and_bids_names_give_ids(table_dir, tsv):
    table = tsv(table_dir / "t.tsv", [["subject", "path", "age"],
                                       ["P-001", "a.nii.gz", "33"],
                                       ["n/a", "scans/sub-07_ses-2_T1w.nii.gz", "34"]])
    (problem,) = _problems(table)
    assert (problem.row, problem.column) == (2, "participant_id")
    tsv(table_dir / "t.tsv", [["path", "age"], ["scans/sub-07_ses-2_T1w.nii.gz", "34"]])
    assert list(load_cohort(table).table["participant_id"]) == ["sub-07"]
    tsv(table_dir / "t.tsv", [["participant_id", "path"], ["P-001", "a.nii.gz"]])
    assert list(load_cohort(table).table["participant_id"]) == ["P-001"]


def test_every_bad_row_reported_with_row_numbers(table_dir, tsv, nifti):
    nifti(table_dir / "vol4d.nii.gz", shape=(9, 10, 8, 2))
    (table_dir / "notes.txt").write_text("x")
    table = tsv(table_dir / "t.tsv", [
        ["participant_id", "path", "age", "sex"],
        ["s1", "a.nii.gz", "abc", "F"],
        ["s2", "missing.nii.gz", "40", "F"],
        ["s3", "vol4d.nii.gz", "40", "Q"],
        ["s4", "notes.txt", "40", "M"],
        ["s5", "n/a", "40", "M"],
        ["s1", "b.nii", "50", "M"],
    ])
    problems = _problems(table)
    assert all(p.where == str(table) for p in problems)
    got = sorted((p.row, p.column) for p in problems)
    assert got == [(1, "age"), (2, "path"), (3, "path"), (3, "sex"), (4, "path"), (5, "path"),
                   (6, None)]
    missing = next(p for p in problems if p.row == 2)
    assert missing.value == str(table_dir / "missing.nii.gz")
    assert "existing image file" in missing.expected


def test_missing_path_column(table_dir, tsv):
    table = tsv(table_dir / "t.tsv", [["participant_id", "age"], ["s1", "20"]])
    (problem,) = _problems(table)
    assert problem.column == "path" and "participant_id, age" in problem.expected


def test_unreadable_and_missing_tables(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"")
    assert "table with a header row" in _problems(bad)[0].expected
    assert _problems(tmp_path / "nope.tsv")[0].expected == "an existing folder or table"


def test_a_row_with_an_extra_field_and_a_repeated_column_are_named(table_dir, tsv):
    extra = tsv(table_dir / "extra.tsv", [["path", "age"], ["a.nii.gz", 40],
                                          ["b.nii", 41, "oops"]])
    (problem,) = _problems(extra)
    assert (problem.row, problem.value) == (2, "3 fields")
    assert problem.expected == "2 tab-separated fields, like the header"
    twice = tsv(table_dir / "twice.tsv", [["path", "age", "age"], ["a.nii.gz", 40, 70]])
    (problem,) = _problems(twice)  # was accepted, with the first 'age' used
    assert problem.value == "age" and "path, age, age" in problem.expected


def test_round_trip_through_to_tsv(bids_root, tmp_path):
    cohort = load_cohort(bids_root)
    cohort.to_tsv(tmp_path / "cohort.tsv")
    again = load_cohort(tmp_path / "cohort.tsv")
    pd.testing.assert_frame_equal(cohort.table, again.table)


def test_participant_labels_on_tables(table_dir, tsv):
    table = tsv(table_dir / "t.tsv", [["participant_id", "path"], ["sub-1", "a.nii.gz"],
                                       ["sub-10", "b.nii"]])
    assert list(load_cohort(table, participant_labels=["1"]).table["participant_id"]) == ["sub-1"]


def test_check_images_off_skips_file_checks(table_dir, tsv):
    table = tsv(table_dir / "t.tsv", [["path"], ["elsewhere/x.nii.gz"]])
    assert len(_problems(table)) == 1
    assert len(load_cohort(table, check_images=False)) == 1


def test_detect_format(tmp_path, bids_root, tsv):
    assert detect_format(bids_root) == "bids"
    assert detect_format(tsv(tmp_path / "t.csv", [["path"]], sep=",")) == "table"
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "train.npy").write_bytes(b"")
    assert detect_format(flat) == "openbhb"
    per_subject = tmp_path / "obhb"
    tsv(per_subject / "participants.tsv", [["participant_id"]])
    (per_subject / "sub-1_preproc-quasiraw_T1w.npy").write_bytes(b"")
    assert detect_format(per_subject) == "openbhb"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationError, match="pass --format"):
        detect_format(tmp_path / "empty")


def test_bad_options_are_reported_together(bids_root):
    problems = _problems(bids_root, format="bdis", sex_codes="0=women", modality="t1")
    assert [p.value for p in problems] == ["bdis", "0=women", "t1"]
    assert "did you mean 'bids'" in problems[0].fix
