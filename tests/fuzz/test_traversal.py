"""Path traversal in labels, ids and datasets is refused with a clear error (issue 24).

Outputs are named after participant and session labels, so a label that looks like a
path (``../x``, ``/etc/x``, ``a\\b``) is refused rather than quietly cleaned to ``x``; a
BIDS image whose real path leaves the dataset (a symlink, a symlinked subject folder)
is refused; run folders may not name member folders outside the run.
"""

from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from brainage.data.labels import label_problems
from brainage.data.sources import read_cohort
from brainage.errors import InputError, ValidationError
from brainage.runs import read_run_info

from fuzz_helpers import FUZZ  # isort: skip

_VOLUME = (np.arange(9 * 10 * 8) % 251).astype(np.uint8).reshape(9, 10, 8)


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(_VOLUME, np.eye(4)), path)
    return path


@pytest.mark.parametrize("column", ["participant_id", "session"])
@pytest.mark.parametrize("label", ["../x", "../../etc/passwd", "/etc/x", "a\\b", "sub-a/../b",
                                   "x..y", "ok\x00"])
def test_a_path_like_label_in_a_table_is_refused_at_its_row(tmp_path, column, label):
    _image(tmp_path / "a.nii")
    other = "ses-1" if column == "participant_id" else "sub-01"
    values = {column: label, ("session" if column == "participant_id" else "participant_id"):
              other}
    (tmp_path / "t.tsv").write_text(f"participant_id\tsession\tpath\n{values['participant_id']}"
                                    f"\t{values['session']}\ta.nii\n")
    with pytest.raises(ValidationError, match=r"row 1 .*column '" + column + r"'.*"
                       r"expected a label, not a path.*Fix: give the") as info:
        read_cohort(tmp_path / "t.tsv")
    assert info.value.problems[0].value == label


def test_labels_that_are_not_paths_are_still_accepted(tmp_path):
    for name in ("a", "b"):
        _image(tmp_path / f"{name}.nii")
    (tmp_path / "t.tsv").write_text("participant_id\tsession\tpath\nIXI_013\tses-a.1\ta.nii\n"
                                    "sub-02\tn/a\tb.nii\n")
    cohort = read_cohort(tmp_path / "t.tsv").cohort
    assert cohort.table["participant_id"].tolist() == ["IXI_013", "sub-02"]


@FUZZ
@given(st.text(min_size=1, max_size=12))  # a missing id is another problem
def test_every_label_is_refused_or_names_a_file_inside_the_output_folder(label):
    from brainage.data.labels import scan_stem

    problems = label_problems([(label, None, None)], [("t.tsv", 1)])
    if problems:
        assert problems[0].value == label and "Fix" in str(problems[0])
        return
    stem = scan_stem(label)
    assert stem.isascii() and os.sep not in stem and ".." not in stem and stem != "sub-"


def _bids(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    _image(root / "sub-01" / "anat" / "sub-01_T1w.nii")
    return root


def test_a_bids_image_symlinked_out_of_the_dataset_is_refused(tmp_path):
    root = _bids(tmp_path / "bids")
    outside = _image(tmp_path / "elsewhere" / "secret.nii")
    (root / "sub-02" / "anat").mkdir(parents=True)
    (root / "sub-02" / "anat" / "sub-02_T1w.nii").symlink_to(outside)
    with pytest.raises(ValidationError, match=r"sub-02_T1w\.nii: got '-> .*secret\.nii'; "
                       r"expected an image inside the dataset folder.*Fix: copy the image"):
        read_cohort(root)


def test_a_subject_folder_symlinked_out_of_the_dataset_is_refused(tmp_path):
    root = _bids(tmp_path / "bids")
    _image(tmp_path / "elsewhere" / "sub-02" / "anat" / "sub-02_T1w.nii")
    (root / "sub-02").symlink_to(tmp_path / "elsewhere" / "sub-02", target_is_directory=True)
    with pytest.raises(ValidationError, match=r"sub-02_T1w\.nii: got '-> .*elsewhere"):
        read_cohort(root)


def test_symlinks_inside_the_dataset_and_a_symlinked_dataset_are_fine(tmp_path):
    """git-annex (datalad) datasets are symlinks into .git/annex: inside the dataset."""
    root = _bids(tmp_path / "bids")
    annexed = _image(root / ".git" / "annex" / "objects" / "ab" / "key.nii")
    (root / "sub-02" / "anat").mkdir(parents=True)
    (root / "sub-02" / "anat" / "sub-02_T1w.nii").symlink_to(annexed)
    (tmp_path / "link").symlink_to(root, target_is_directory=True)
    for source in (root, tmp_path / "link"):
        assert len(read_cohort(source).cohort.table) == 2


def test_a_symlink_loop_is_a_named_problem_not_a_crash(tmp_path):
    root = _bids(tmp_path / "bids")
    loop = root / "sub-02" / "anat" / "sub-02_T1w.nii"
    loop.parent.mkdir(parents=True)
    loop.symlink_to(loop)
    with pytest.raises(ValidationError, match=r"sub-02_T1w\.nii.*expected an existing image"):
        read_cohort(root)


@pytest.mark.parametrize("member", ["../other", "/etc", "fold-0/../../x", "a\x00b"])
def test_a_run_json_naming_a_member_outside_the_run_is_refused(tmp_path, member):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({
        "format": "brainage-run", "version": 1, "kind": "models", "members": [member],
        "training_range": [20, 80], "spec_hash": "x", "input_shape": [9, 10, 8]}))
    with pytest.raises(InputError, match=r"run\.json: member folder .* (points outside|is not)"
                       r".*Fix:"):
        read_run_info(run)
