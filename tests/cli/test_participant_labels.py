"""Participant labels as BIDS Apps take them: one parser and one argv rewrite for every command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from brainage.cli.labels import expand_label_args, participant_labels
from brainage.cli.main import BIDS_APP, app, route_args
from brainage.errors import InputError


@pytest.mark.parametrize(("args", "expected"), [
    (["prepare", "in", "out", "--participant-label", "01", "02", "--jobs", "2"],
     ["prepare", "in", "out", "--participant-label", "01", "--participant-label", "02",
      "--jobs", "2"]),
    (["--participant_label", "01", "sub-02"],
     ["--participant_label", "01", "--participant_label", "sub-02"]),
    (["--participant-label", "01", "02", "--", "x"],
     ["--participant-label", "01", "--participant-label", "02", "--", "x"]),
    (["--participant-label", "01", "participant"], ["--participant-label", "01", "participant"]),
    (["--participant-label=01", "02"], ["--participant-label=01", "02"]),
    (["train", "a", "b"], ["train", "a", "b"]),
])
def test_expand_label_args(args, expected):
    assert expand_label_args(args) == expected


def test_participant_labels_accept_every_form_once_in_order():
    assert participant_labels(["sub-02", "01,sub-03", "02", "04 05"]) == ["02", "01", "03",
                                                                          "04", "05"]
    assert participant_labels(None) is None and participant_labels([",", ""]) is None


@pytest.mark.parametrize("bad", ["sub-", "a/b", "sub-01;rm"])
def test_bad_label_is_a_clear_error(bad):
    with pytest.raises(InputError, match=r"--participant-label: got .*Fix: list labels"):
        participant_labels([bad])


def test_bids_app_form_routes_only_for_an_existing_folder_and_a_level(tmp_path):
    bids = str(tmp_path)
    commands = {"train", "prepare"}
    assert route_args([bids, "out", "group"], commands) == [BIDS_APP, bids, "out", "group"]
    assert route_args([bids, "out", "participant", "--participant-label", "1", "2"],
                      commands) == [BIDS_APP, bids, "out", "participant",
                                    "--participant-label", "1", "--participant-label", "2"]
    assert route_args([bids, "out", "other"], commands)[0] == bids
    assert route_args([str(tmp_path / "missing"), "out", "group"], commands)[0] != BIDS_APP
    assert route_args(["train", "out", "group"], commands)[0] == "train"


def test_space_separated_labels_reach_cohort_check(tmp_path):
    import nibabel as nib
    import numpy as np

    bids = tmp_path / "bids"
    for label in ("01", "02", "03"):
        path = bids / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz"
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.zeros((9, 10, 8), np.uint8), np.eye(4)), path)
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t20\nsub-02\t30\n"
                                           "sub-03\t40\n")
    out = tmp_path / "c.tsv"
    result = CliRunner().invoke(app, ["cohort", "check", str(bids), "--participant-label",
                                      "01", "sub-03", "--write", str(out)])
    assert result.exit_code == 0, result.output
    assert "n 2" in result.output or "2 scan" in result.output, result.output
    assert sorted(line.split("\t")[0] for line in out.read_text().splitlines()[1:]) == [
        "sub-01", "sub-03"]


def test_bids_app_without_a_model_says_to_pass_one(tmp_path, monkeypatch):
    from brainage import bundled_runs as bundled

    monkeypatch.setattr(bundled, "default_model_dir", lambda: None)  # an install without one
    bids = tmp_path / "bids"
    (bids / "sub-01" / "anat").mkdir(parents=True)
    result = CliRunner().invoke(app, [str(bids), str(tmp_path / "out"), "participant"])
    assert result.exit_code == 2
    assert "no bundled model" in result.output and "--model RUN" in result.output
    assert not (tmp_path / "out").exists()


def test_unknown_level_is_refused(tmp_path):
    result = CliRunner().invoke(app, ["bids-app", str(tmp_path), str(tmp_path / "o"), "subject"])
    assert result.exit_code == 2 and "expected one of participant, group" in result.output
