"""Core pieces shared by every stage: errors, atomic I/O, the Cohort table, sex codes."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from brainage.data.cohort import Cohort, bids_label
from brainage.data.sex import normalise_sex
from brainage.errors import Problem, ValidationError
from brainage.io import TableError, atomic_path, read_table, write_tsv


def test_problem_message_names_location_value_expectation_and_fix():
    p = Problem("participants.tsv", "a number of years", "write n/a", value="abc", row=3, column="age")
    text = str(p)
    assert text.startswith("participants.tsv, row 3, column 'age': got 'abc'")
    assert "expected a number of years" in text and "Fix: write n/a" in text


def test_validation_error_lists_every_problem():
    probs = [Problem("f", "x", "y", row=i) for i in (1, 2, 3)]
    err = ValidationError(probs, "cohort")
    assert err.problems == probs
    assert str(err).count("\n  - ") == 3 and "3 problem(s) in cohort" in str(err)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_directories(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "old").write_text("1")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_read_table_sniffs_and_reads_na(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("id;age\n1;n/a\n2;3.5\n")
    df = read_table(f)
    assert list(df.columns) == ["id", "age"]
    assert df["age"].isna().tolist() == [True, False]



def test_read_table_names_every_row_with_an_extra_field(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("id\tage\na\t1\nb\t2\textra\nc\t3\nd\t4\tx\ty\n")
    with pytest.raises(TableError) as info:
        read_table(path)
    rows = [(p.row, p.value) for p in info.value.problems]
    assert rows == [(2, "3 fields"), (4, "4 fields")]
    assert "2 tab-separated fields, like the header" in str(info.value)


def test_read_table_refuses_a_column_named_twice(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("participant_id,age,predicted_age,age\ns,40,41,70\n")
    with pytest.raises(TableError, match=r"got 'age'; expected each column named once "
                                         r"\(the header is participant_id, age, predicted_age"):
        read_table(path)

@pytest.mark.parametrize(
    ("raw", "numeric", "expected"),
    [("M", None, "M"), ("female", None, "F"), (" f ", None, "F"), ("n/a", None, None),
     (float("nan"), None, None), ("0", "0=female", "F"), (1, "0=female", "M"),
     ("1.0", "0=male", "F"), ("2", "1=male,2=female", "F")],
)
def test_normalise_sex(raw, numeric, expected):
    assert normalise_sex(raw, numeric) == expected


@pytest.mark.parametrize(("raw", "numeric"), [("1", None), ("x", None), ("3", "0=female")])
def test_normalise_sex_rejects_ambiguous_or_unknown(raw, numeric):
    with pytest.raises(ValueError, match="sex"):
        normalise_sex(raw, numeric)


def _cohort() -> Cohort:
    return Cohort(pd.DataFrame({
        "participant_id": ["sub-1", "sub-10", "sub-10", "sub-2"],
        "session": [None, "ses-1", "ses-2", None],
        "path": ["/a", "/b", "/c", "/d"],
        "age": ["20", "30", "32", None],
        "site": ["A", "B", "B", None],
        "extra": [1, 2, 3, 4],
    }))


def test_cohort_conforms_columns_and_types():
    c = _cohort()
    assert list(c.table.columns)[:8] == ["participant_id", "session", "run", "path", "age",
                                          "sex", "site", "group"]
    assert c.table.columns[-1] == "extra"
    assert c.table["age"].dtype == float
    assert c.subjects == ["sub-1", "sub-10", "sub-2"]


def test_cohort_summary_counts():
    s = _cohort().summary()
    assert (s["scans"], s["subjects"], s["sessions"]) == (4, 3, 4)
    assert (s["with_age"], s["missing_age"]) == (3, 1)
    assert s["age_min"] == 20 and s["age_max"] == 32
    assert math.isclose(s["age_mean"], 82 / 3)
    assert s["per_site"] == {"A": 1, "B": 2, "n/a": 1}
    assert "missing for 1" in _cohort().format_summary()


def test_cohort_tsv_round_trip(tmp_path):
    c = _cohort()
    c.to_tsv(tmp_path / "c.tsv")
    assert "n/a" in (tmp_path / "c.tsv").read_text()
    back = Cohort.from_tsv(tmp_path / "c.tsv")
    pd.testing.assert_frame_equal(back.table.drop(columns="extra"), c.table.drop(columns="extra"))


def test_with_age_and_bids_label():
    assert len(_cohort().with_age()) == 3
    assert bids_label("sub-01") == "01" and bids_label("01") == "01"


def test_write_tsv_is_atomic(tmp_path):
    write_tsv(tmp_path / "x.tsv", pd.DataFrame({"a": [1, None]}))
    assert (tmp_path / "x.tsv").read_text().splitlines() == ["a", "1.0", "n/a"]


def test_validation_error_caps_printed_problems_but_keeps_all():
    err = ValidationError([Problem("f", "x", "y", row=i) for i in range(1, 201)])
    assert len(err.problems) == 200
    assert "... and 150 more" in str(err) and str(err).count("\n  - ") == 50


def test_importing_brainage_turns_on_huge_pages_for_torch_unless_set():
    import os
    import subprocess
    import sys

    code = "import os, brainage; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "1"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "THP_MEM_ALLOC_ENABLE": "0"},
                         capture_output=True, text=True)
    assert out.stdout.strip() == "0"  # the user's choice wins
