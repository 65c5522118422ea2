"""The bundled model: predict without a run, the selftest, the default-preset rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from brainage import bundled_runs as bundled
from brainage.cli.main import app
from brainage.errors import BrainAgeError
from brainage.training.presets import default_preset

needs_bundled = pytest.mark.skipif(bundled.default_model_dir() is None,
                                   reason="no bundled model in this checkout (make model)")


def test_default_preset_rule():
    assert default_preset(True, [], False) == "tissue_ridge"
    assert default_preset(True, ["split.folds=3", "classical.pool=3"], False) == "tissue_ridge"
    assert default_preset(True, ["epochs=2"], False) == "quickstart"  # a network field
    assert default_preset(True, [], True) == "quickstart"  # --cascade, --init-from, ...
    assert default_preset(False, [], False) == "quickstart"  # no tissue maps


def test_predict_without_run_or_bundled_model_is_a_clear_error(monkeypatch, tmp_path):
    from brainage.cli.predict import split_run

    monkeypatch.setattr(bundled, "default_model_dir", lambda: None)
    with pytest.raises(BrainAgeError, match="no bundled model"):
        split_run([tmp_path / "scan.nii.gz"], None)
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("{}")
    assert split_run([run, tmp_path / "a.nii"], None) == (run, [tmp_path / "a.nii"])
    with pytest.raises(BrainAgeError, match="nothing to predict"):
        split_run([run], None)


@needs_bundled
def test_bundled_model_is_small_and_says_what_it_is_valid_for():
    import json

    run = bundled.default_model_dir()
    size = sum(p.stat().st_size for p in run.rglob("*") if p.is_file())
    assert size < 20e6
    card = json.loads((run / "model_card.json").read_text())
    assert "CC BY-SA 3.0" in card["training_data_licence"]["licence"]
    assert "20-82" in bundled.validity_note(run)
    assert not list(run.rglob("*.ckpt")) and (run / "golden.json").is_file()


@needs_bundled
@pytest.mark.slow
def test_selftest_reproduces_the_recorded_predictions():
    result = CliRunner().invoke(app, ["selftest"])
    assert result.exit_code == 0, result.output
    assert "selftest passed" in result.output and result.output.count(": expected") == 3


@needs_bundled
@pytest.mark.slow
def test_predict_a_raw_scan_with_the_bundled_model(tmp_path):
    import pandas as pd

    import brainage

    bids = brainage.simulate(tmp_path / "bids", n=1, sites=1, seed=5)
    scan = next(Path(bids).glob("sub-*/anat/*_T1w.nii.gz"))
    out = tmp_path / "pred.tsv"
    result = CliRunner().invoke(app, ["predict", str(scan), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "bundled model ixi_tissue_ridge" in result.output and "20-82" in result.output
    table = pd.read_csv(out, sep="\t")
    assert len(table) == 1 and 0 < table["predicted_age"].iloc[0] < 120


@needs_bundled
@pytest.mark.slow
def test_predict_a_dicom_folder_with_the_bundled_model(tmp_path):
    """A simulated head written as a DICOM series (in DICOM's LPS order), no run given: the
    bundled model predicts it and the header gives the age."""
    import sys

    import nibabel as nib
    import numpy as np
    import pandas as pd

    import brainage

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
    from dicom_helpers import write_series

    bids = brainage.simulate(tmp_path / "bids", n=1, sites=1, seed=5)
    img = nib.as_closest_canonical(nib.load(next(Path(bids).glob("sub-*/anat/*_T1w.nii.gz"))))
    data = np.asarray(img.dataobj, dtype=np.float32)
    lps = data[::-1, ::-1, :] / max(float(data.max()), 1e-6) * 1000  # RAS -> LPS voxel order
    study = write_series(tmp_path / "sub-07", lps, age="052Y", sex="M",
                         spacing=tuple(float(v) for v in img.header.get_zooms()[:3]))
    out = tmp_path / "pred.tsv"
    result = CliRunner().invoke(app, ["predict", str(study), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "bundled model ixi_tissue_ridge" in result.output
    table = pd.read_csv(out, sep="\t")
    assert table["age"].iloc[0] == 52.0 and table["age_source"].iloc[0] == "PatientAge"
    assert 10 < table["predicted_age"].iloc[0] < 100
