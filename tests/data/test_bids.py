"""The BIDS reader through load_cohort / read_cohort."""

from __future__ import annotations

import pytest

from brainage.data.bids import parse_entities
from brainage.data.sources import CohortWarning, load_cohort, read_cohort
from brainage.errors import ValidationError


def _problems(source, **kwargs):
    with pytest.raises(ValidationError) as info:
        load_cohort(source, **kwargs)
    return info.value.problems


def test_reads_labels_and_keeps_extra_columns(bids_root):
    cohort = load_cohort(bids_root)
    t = cohort.table
    assert list(t["participant_id"]) == ["sub-01", "sub-02", "sub-03"]
    assert list(t["sex"].fillna("-")) == ["F", "M", "-"]
    assert t["age"].iloc[0] == 30.5 and t["age"].iloc[1] == 42.0 and t["age"].isna().iloc[2]
    assert list(t["site"]) == ["A", "B", "A"] and list(t["diagnosis"])[1] == "patient"
    assert t["path"].iloc[1] == str(bids_root / "sub-02" / "anat" / "sub-02_T1w.nii.gz")
    s = cohort.summary()
    assert (s["with_age"], s["missing_age"], s["per_site"]) == (2, 1, {"A": 2, "B": 1})


def test_entities():
    assert parse_entities("sub-01_ses-2_acq-mp2rage_run-3_T1w.nii.gz") == {
        "sub": "01", "ses": "2", "acq": "mp2rage", "run": "3"}


def test_subject_folder_missing_from_participants_is_listed(bids_root, nifti):
    nifti(bids_root / "sub-04" / "anat" / "sub-04_T1w.nii")
    report = read_cohort(bids_root)
    t = report.cohort.table
    assert list(t["participant_id"]) == ["sub-01", "sub-02", "sub-03", "sub-04"]
    assert t["age"].isna().iloc[3] and t["site"].isna().iloc[3]
    (warning,) = [w for w in report.warnings if "no row in participants.tsv" in w]
    assert ": sub-04. Fix: add their rows" in warning  # named, not only counted
    # the same under cohort check (require_scans): a warning, not an error
    assert read_cohort(bids_root, require_scans=True).warnings == report.warnings


def test_participant_without_image_is_a_warning_for_runs(bids_root, tsv):
    with (bids_root / "participants.tsv").open("a") as f:
        f.write("sub-09\t50\tM\tB\tcontrol\n")
    report = read_cohort(bids_root)
    assert len(report.cohort) == 3
    (warning,) = report.warnings
    assert "1 participant(s) listed in" in warning and "sub-09 (row 4)" in warning
    with pytest.warns(CohortWarning, match=r"sub-09 \(row 4\)"):
        load_cohort(bids_root)


def test_participant_without_image_is_an_error_for_cohort_check(bids_root, tsv):
    with (bids_root / "participants.tsv").open("a") as f:
        f.write("sub-09\t50\tM\tB\tcontrol\n")
    with pytest.raises(ValidationError) as info:
        read_cohort(bids_root, require_scans=True)
    (problem,) = info.value.problems
    assert (problem.row, problem.participant, problem.column) == (4, "sub-09", "participant_id")
    assert "participants.tsv, row 4 (sub-09), column 'participant_id'" in str(info.value)
    assert "expected a T1w image" in str(problem) and "Fix: add the image" in str(problem)


def test_subject_folder_without_image_or_row_is_a_warning(bids_root):
    (bids_root / "sub-07" / "func").mkdir(parents=True)
    for require in (False, True):
        report = read_cohort(bids_root, require_scans=require)
        assert len(report.cohort) == 3
        assert any("subject folder(s) without a T1w image" in w and "sub-07" in w
                   for w in report.warnings)


def test_runs_and_acq_make_distinct_rows(bids_root, nifti):
    anat = bids_root / "sub-01" / "anat"
    (anat / "sub-01_T1w.nii.gz").unlink()
    for name in ("sub-01_run-1_T1w.nii.gz", "sub-01_run-2_T1w.nii.gz",
                 "sub-01_acq-fast_run-3_T1w.nii.gz"):
        nifti(anat / name)
    t = load_cohort(bids_root).table
    sub1 = t[t["participant_id"] == "sub-01"]
    assert sorted(zip(sub1["run"], sub1["acq"].fillna("-"), strict=True)) == [
        (1, "-"), (2, "-"), (3, "fast")]
    assert (sub1["age"] == 30.5).all()


def test_scans_differing_only_by_acq_are_refused(bids_root, nifti):
    """Outputs are named sub/ses/run, so two acquisitions of one run would collide."""
    anat = bids_root / "sub-01" / "anat"
    nifti(anat / "sub-01_acq-fast_T1w.nii.gz")
    with pytest.raises(ValidationError) as err:
        load_cohort(bids_root)
    (problem,) = err.value.problems
    assert problem.where.endswith("sub-01_acq-fast_T1w.nii.gz")
    assert "sub-01_T1w.nii.gz" in problem.expected and "run-<n>" in problem.fix
    assert "(acq-fast vs no acq)" in problem.expected


def test_sessions_tsv_overrides_age_per_session(bids_root, nifti, tsv):
    for ses in ("ses-1", "ses-2"):
        nifti(bids_root / "sub-02" / ses / "anat" / f"sub-02_{ses}_T1w.nii.gz")
    (bids_root / "sub-02" / "anat" / "sub-02_T1w.nii.gz").unlink()
    tsv(bids_root / "sub-02" / "sub-02_sessions.tsv",
        [["session_id", "age", "scanner"], ["ses-1", "42", "X"], ["2", "44.5", "Y"]])
    report = read_cohort(bids_root)
    sub2 = report.cohort.table.query("participant_id == 'sub-02'")
    assert list(sub2["session"]) == ["ses-1", "ses-2"]
    assert list(sub2["age"]) == [42.0, 44.5] and list(sub2["scanner"]) == ["X", "Y"]
    assert report.cohort.summary()["sessions"] == 4
    assert not any("sessions.tsv" in n for n in report.notes)


def test_longitudinal_without_sessions_tsv_is_noted(bids_root, nifti):
    for ses in ("ses-1", "ses-2"):
        nifti(bids_root / "sub-03" / ses / "anat" / f"sub-03_{ses}_T1w.nii.gz")
    report = read_cohort(bids_root)
    assert any("sub-03" in n and "sessions.tsv" in n for n in report.notes)


def test_bad_session_age_names_the_sessions_file(bids_root, nifti, tsv):
    nifti(bids_root / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_T1w.nii.gz")
    sessions = tsv(bids_root / "sub-01" / "sub-01_sessions.tsv", [["session_id", "age"],
                                                                  ["ses-a", "old"]])
    (problem,) = _problems(bids_root)
    assert (problem.where, problem.row, problem.value) == (str(sessions), 1, "old")


@pytest.mark.parametrize("labels", [["01", "sub-03"], ["01,03"], ["sub-01 03"]])
def test_participant_labels_with_or_without_prefix(bids_root, labels):
    cohort = load_cohort(bids_root, participant_labels=labels)
    assert list(cohort.table["participant_id"]) == ["sub-01", "sub-03"]


def test_unknown_participant_label(bids_root):
    (problem,) = _problems(bids_root, participant_labels=["07"])
    assert problem.value == "07" and "01, 02, 03" in problem.expected


def test_every_problem_is_reported_at_once(bids_root, nifti, tsv):
    tsv(bids_root / "participants.tsv", [
        ["participant_id", "age", "sex"],
        ["sub-01", "abc", "F"], ["sub-02", "-3", "X"], ["sub-03", "150", "1"], ["sub-01", "9", "F"],
    ])
    nifti(bids_root / "sub-02" / "anat" / "sub-02_T1w.nii.gz", shape=(9, 10, 8, 2))
    (bids_root / "sub-03" / "anat" / "sub-03_T1w.nii.gz").write_text("oops")
    nifti(bids_root / "sub-01" / "anat" / "sub-01_T1w.nii")  # same entities as the .nii.gz
    problems = _problems(bids_root)
    where = str(bids_root / "participants.tsv")
    table = {(p.row, p.column): p.value for p in problems if p.where == where}
    assert table == {(1, "age"): "abc", (2, "age"): "-3", (3, "age"): "150",
                     (2, "sex"): "X", (3, "sex"): "1", (4, "participant_id"): "sub-01"}
    images = [p for p in problems if p.where != where]
    assert any("single volume" in p.expected for p in images)
    assert any("readable NIfTI" in p.expected for p in images)
    assert any("listed once" in p.expected for p in images)
    assert len(problems) == 9


def test_numeric_sex_with_declared_convention(bids_root, tsv):
    tsv(bids_root / "participants.tsv", [["participant_id", "age", "sex"],
                                         ["sub-01", "30", "0"], ["sub-02", "40", "1"],
                                         ["sub-03", "50", "1"]])
    assert len(_problems(bids_root)) == 3
    cohort = load_cohort(bids_root, sex_codes="0=female")
    assert list(cohort.table["sex"]) == ["F", "M", "M"]


def test_file_name_must_match_its_folder(bids_root, nifti):
    nifti(bids_root / "sub-01" / "anat" / "sub-02_acq-x_T1w.nii.gz")
    problems = [p for p in _problems(bids_root) if "folder" in p.expected]
    assert len(problems) == 1 and "sub-02_acq-x" in problems[0].where


def test_missing_site_when_asked_for(bids_root, tsv):
    tsv(bids_root / "participants.tsv", [["participant_id", "age", "site"],
                                         ["sub-01", "30", "A"], ["sub-02", "40", "n/a"]])
    problems = _problems(bids_root, require_site=True)
    assert {(p.row, p.participant) for p in problems} == {(2, "sub-02"), (None, "sub-03")}
    assert all(p.column == "site" for p in problems)
    assert len(load_cohort(bids_root)) == 3  # without the option these are fine


def test_no_participants_tsv(bids_root):
    (bids_root / "participants.tsv").unlink()
    report = read_cohort(bids_root)
    assert report.cohort.table["age"].isna().all()
    assert any("no participants.tsv" in n for n in report.notes)


def test_no_t1w_images_at_all(tmp_path):
    (tmp_path / "sub-01" / "anat").mkdir(parents=True)
    (problem,) = _problems(tmp_path)
    assert "at least one scan" in problem.expected


def test_an_empty_dataset_with_a_header_only_participants_tsv(tmp_path, tsv):
    (tmp_path / "dataset_description.json").write_text('{"Name": "e", "BIDSVersion": "1.9"}')
    tsv(tmp_path / "participants.tsv", [["participant_id", "age", "sex"]])
    (problem,) = _problems(tmp_path)  # was a pandas merge ValueError
    assert "at least one scan" in problem.expected and "_T1w.nii" in problem.expected


def test_every_row_problem_names_its_participant_and_session(bids_root, nifti, tsv):
    tsv(bids_root / "participants.tsv", [["participant_id", "age", "sex"],
                                         ["sub-01", "200", "F"], ["sub-02", "40", "Q"],
                                         ["sub-03", "30", "F"], ["sub-03", "31", "F"]])
    for ses in ("ses-1", "ses-2"):
        nifti(bids_root / "sub-01" / ses / "anat" / f"sub-01_{ses}_T1w.nii.gz")
    tsv(bids_root / "sub-01" / "sub-01_sessions.tsv", [["session_id", "age"],
                                                       ["ses-1", "abc"], ["ses-2", "31"],
                                                       ["ses-2", "32"]])
    named = {(p.where.rsplit("/", 1)[-1], p.row): (p.participant, p.session)
             for p in _problems(bids_root) if p.row is not None}
    assert named == {
        ("participants.tsv", 1): ("sub-01", None), ("participants.tsv", 2): ("sub-02", None),
        ("participants.tsv", 4): ("sub-03", None),
        ("sub-01_sessions.tsv", 1): ("sub-01", "ses-1"),
        ("sub-01_sessions.tsv", 3): ("sub-01", "ses-2")}


def test_table_row_problems_name_the_participant(tmp_path, nifti, tsv):
    nifti(tmp_path / "a.nii.gz")
    table = tsv(tmp_path / "t.tsv", [["participant_id", "session", "path", "age"],
                                     ["P1", "ses-A", "a.nii.gz", "x"],
                                     ["P2", "n/a", "n/a", "40"],
                                     ["P3", "n/a", "missing.nii.gz", "40"],
                                     ["P1", "ses-A", "a.nii.gz", "41"]])
    problems = {p.row: p for p in _problems(table)}
    assert problems[1].participant == "P1" and problems[1].session == "ses-A"
    assert problems[2].participant == "P2" and problems[2].column == "path"
    assert problems[3].participant == "P3" and "missing.nii.gz" in str(problems[3].value)
    assert problems[4].participant == "P1" and "listed once" in problems[4].expected
    assert str(problems[1]).startswith(f"{table}, row 1 (P1 ses-A), column 'age'")
