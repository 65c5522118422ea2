"""Everything brainage writes as BIDS passes the official validator with zero errors.

The writers: ``brainage simulate`` (raw dataset + ground-truth derivative), ``brainage
prepare`` derivatives, the BIDS App's participant and group outputs, and ``brainage gan
synthesize`` (with its change map). The validator runs offline (:mod:`bids_validation`);
the warnings it may give are the ones ``docs/bids.md`` lists with the reason each is
accepted. The pipeline is faked where registration would take minutes: the files come
from the same writers either way (the real pipeline's BIDS App output is validated in
``tests/cli/test_bids_app.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

import brainage
from bids_validation import accepted_warnings, assert_valid, validate, validator_command
from brainage.preprocessing import pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent / "training"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "preprocessing"))
from prep_helpers import fake_preprocess  # noqa: E402
from synthetic_runs import (  # noqa: E402
    GAN_SHAPE,
    make_prepared,
    one_torch_thread,
    spec_for_tests,
    tiny_config,
    tiny_gan,
)

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)
GRID = "8mm:20x24x18"


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    """3 subjects x 2 sessions at 4 mm, with the true brain masks in the ground truth."""
    return brainage.simulate(tmp_path_factory.mktemp("sim") / "bids", n=3, sites=2, seed=0,
                             voxel_size=4, sessions=2, masks=True)


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(pipeline, "preprocess", fake_preprocess)


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.nii.gz") if not p.name.startswith("."))


def _assert_sidecars(root: Path, images: bool = True) -> None:
    """A JSON sidecar beside every image (a derivative's), and one describing every column
    of every TSV (brainage's own tables too, which .bidsignore hides from the validator)."""
    for image in _images(root) if images else []:
        assert image.with_name(image.name.removesuffix(".nii.gz") + ".json").is_file(), image
    for table in root.rglob("*.tsv"):
        if table.name == "metrics.tsv":  # its .json is the evaluation record (docs/bids.md)
            assert "sets" in json.loads(table.with_suffix(".json").read_text()), table
            continue
        sidecar = table.with_suffix(".json")
        if table.name.endswith("_sessions.tsv"):  # inherited: one for all subjects
            sidecar = root / "sessions.json"
        described = json.loads(sidecar.read_text())
        columns = pd.read_csv(table, sep="\t", nrows=0).columns
        assert set(columns) <= set(described), (table, set(columns) - set(described))
        assert all(described[c].get("Description") for c in columns), table


def test_the_validator_is_installed_and_its_console_script_runs():
    exe = Path(sys.executable).with_name("bids-validator-deno")
    assert exe.is_file(), f"{exe}: missing. Fix: make install (the test extras)."
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "bids-validator" in out.stdout, out.stdout + out.stderr


def test_a_missing_validator_fails_the_tests_instead_of_skipping_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "bids_validator_deno", None)  # import fails
    with pytest.raises(pytest.fail.Exception, match="validator is not installed.*make install"):
        validator_command()


def test_the_validator_finds_errors_offline(tmp_path):
    """A negative control: the checks the writers rely on do fire, with the network denied."""
    root = tmp_path / "bad"
    anat = root / "sub-01" / "anat"
    anat.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "x", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
         "GeneratedBy": [{"Name": "brainage"}]}))
    img = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.eye(4))
    nib.save(img, anat / "sub-01_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.nii.gz")
    nib.save(img, anat / "sub-01_brainage.nii.gz")
    report = validate(root)
    errors = report.codes("error")
    assert ("NOT_INCLUDED", "") in errors  # a name BIDS does not know
    assert ("SIDECAR_KEY_REQUIRED", "Resolution") in errors  # res- without its meaning


def test_accepted_warnings_are_documented_with_a_reason():
    for writer in ("simulate", "prepare", "bids-app", "gan"):
        assert accepted_warnings(writer), writer
    assert ("TOO_FEW_AUTHORS", "") in accepted_warnings("prepare")
    assert not accepted_warnings("no-such-writer")


def test_simulate_output_and_its_ground_truth_are_valid(simulated, tmp_path):
    report = validate(simulated)
    assert_valid(report, "simulate")
    assert sorted(report.raw["summary"]["subjects"]) == ["001", "002", "003"]
    _assert_sidecars(simulated, images=False)  # raw scans: no scanner to describe
    truth = simulated / "derivatives" / "simulation"
    report = validate(truth)
    assert_valid(report, "simulate")
    assert report.files() >= 3 * 2 * 2  # the masks and their sidecars were validated
    _assert_sidecars(truth)
    plain = brainage.simulate(tmp_path / "plain", n=2, sites=1, seed=1, voxel_size=8)
    assert_valid(validate(plain), "simulate")  # the default: one session, no masks
    assert_valid(validate(plain / "derivatives" / "simulation"), "simulate")


def test_prepare_derivatives_are_valid(simulated, tmp_path, fake):
    out = tmp_path / "prepared"
    summary = brainage.prepare(simulated, out, grid=GRID, nonlinear=True, progress=False)
    assert summary.processed == 6 and not summary.failed, summary.format()
    images = _images(out)
    assert len(images) == 6 * 6  # preproc, mask, GM, WM, CSF, log-Jacobian per scan
    report = validate(out)
    assert_valid(report, "prepare")
    assert report.files() >= 2 * 6 * 5  # it saw every image but the log-Jacobian, + sidecar
    _assert_sidecars(out)
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert summary.spec_hash in desc["GeneratedBy"][0]["Description"]
    assert desc["SourceDatasets"] == [{"URL": simulated.resolve().as_uri()}]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny network run on the 8 mm test grid (trained on synthetic arrays)."""
    from brainage.training.fit import train_cohort

    root = tmp_path_factory.mktemp("run")
    prepared = make_prepared(root / "prep", n=8, spec=spec_for_tests(n4=False))
    with pytest.warns(UserWarning, match="no predictive intervals stored"), \
            pytest.warns(UserWarning, match="no bias correction stored"):
        return train_cohort(prepared, root / "run", tiny_config(epochs=1))


def test_bids_app_participant_and_group_outputs_are_valid(simulated, tiny_run, tmp_path,
                                                          fake):
    bids = tmp_path / "bids"
    shutil.copytree(simulated, bids, ignore=shutil.ignore_patterns("derivatives"))
    out = tmp_path / "derivatives" / "brainage"
    summary = brainage.bids_participant(bids, out, tiny_run, steps=2)
    assert len(summary.done) == 3 and not summary.failed, summary.format()
    assert_valid(validate(out), "bids-app")
    brainage.bids_group(bids, out, n_boot=20)
    assert (out / "group" / "evaluation" / "metrics.tsv").is_file()
    assert (out / "group" / "evaluation" / "longitudinal.tsv").is_file()  # two sessions
    report = validate(out)
    assert_valid(report, "bids-app")
    assert sorted(report.raw["summary"]["subjects"]) == ["001", "002", "003"]
    _assert_sidecars(out)


def test_gan_synthesize_output_and_its_change_map_are_valid(tmp_path):
    from brainage.synthesis.synthesize import synthesize
    from brainage.training.gan_fit import train_gan

    cohort = make_prepared(tmp_path / "prep", n=12, shape=GAN_SHAPE)
    gan = train_gan(cohort, tmp_path / "gan", tiny_gan("epochs=1", "samples=0"))
    out = synthesize(gan, tmp_path / "syn", cap=4, bin_width=10.0, reuse_pairs=True)
    assert (out / "change_map" / "dataset_description.json").is_file()
    report = validate(out)
    assert_valid(report, "gan")
    assert len(report.raw["summary"]["subjects"]) >= 2
    assert_valid(validate(out / "change_map"), "gan")
    _assert_sidecars(out)
