"""Labels that name no output or collide once cleaned are refused by cohort check (issue 14)."""

from __future__ import annotations

import pytest

from brainage.data.labels import clean_label, scan_stem
from brainage.data.sources import read_cohort
from brainage.errors import ValidationError
from brainage.preprocessing.cache import ScanKey


@pytest.mark.parametrize("key", [("sub-IXI_013", None, None), ("IXI-013", "ses-a.1", 2),
                                 ("sub-01", "ses-2", None)])
def test_stem_is_the_name_prepare_gives_the_outputs(key):
    assert scan_stem(*key) == ScanKey(*key).stem
    assert clean_label("IXI_013") == clean_label("IXI-013") == "IXI013"


def test_empty_and_colliding_labels_are_problems_with_their_rows(tmp_path, nifti, tsv):
    for name in ("a", "b", "c", "d"):
        nifti(tmp_path / f"{name}.nii.gz")
    table = tsv(tmp_path / "t.tsv", [["participant_id", "path", "age"], ["..", "a.nii.gz", 40],
                                     ["IXI_014", "b.nii.gz", 41], ["IXI-014", "c.nii.gz", 42],
                                     ["IXI015", "d.nii.gz", 43]])
    with pytest.raises(ValidationError) as info:
        read_cohort(table)
    first, second = info.value.problems
    assert (first.row, first.value, first.column) == (1, "..", "participant_id")
    assert "letters or digits" in first.expected
    assert second.row == 3 and second.value == "IXI-014"
    assert "IXI_014" in second.expected and "row 2" in second.expected
    assert "sub-IXI014" in second.expected


def test_prepare_refuses_them_the_same_way(tmp_path, nifti, tsv):
    from brainage.data.sources import load_cohort

    nifti(tmp_path / "a.nii.gz")
    table = tsv(tmp_path / "t.tsv", [["participant_id", "path"], ["..", "a.nii.gz"]])
    with pytest.raises(ValidationError, match="letters or digits"):
        load_cohort(table, check_images=False)  # what prepare reads with
