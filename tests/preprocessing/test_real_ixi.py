"""Real IXI scans (skipped when ../shared/data is absent): Dice to reference masks, overlay."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from prep_helpers import IXI

from brainage.preprocessing import CacheReader, PreprocessingSpec, preprocess
from brainage.preprocessing.antsio import grid_image, template_t1
from brainage.preprocessing.skullstrip import dice

pytestmark = [
    pytest.mark.slow, pytest.mark.realdata,
    pytest.mark.skipif(not IXI.is_dir(), reason="IXI data (../shared/data) not available"),
]
LABELS = ["IXI013", "IXI014"]


def _reference(label: str) -> np.ndarray:
    path = IXI / "derivatives" / "reference-masks" / f"sub-{label}" / "anat" / \
        f"sub-{label}_desc-brain_mask.nii.gz"
    return np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj) > 0


def _scan(label: str) -> str:
    return str(IXI / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")


def test_prepare_two_ixi_scans_from_bids(tmp_path):
    import ants
    from typer.testing import CliRunner

    from brainage.cli.main import app

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["prepare", str(IXI), str(out), "--no-progress",
                                   "--participant-label", ",".join(LABELS)])
    assert res.exit_code == 0, res.output
    reader = CacheReader(out, expected=PreprocessingSpec.create())
    assert list(reader.table["scan"]) == [f"sub-{lab}" for lab in LABELS]
    tpl = ants.resample_image_to_target(template_t1(2), grid_image(reader.spec.grid)).numpy()
    for i, row in reader.table.iterrows():
        img = nib.load(out / row["preproc"])
        np.testing.assert_allclose(img.affine, reader.spec.grid.affine_array)
        mask = np.asarray(nib.load(out / row["mask"]).dataobj) > 0
        array = reader.load(i)
        assert np.corrcoef(array[mask], tpl[mask])[0, 1] > 0.35  # overlays the template
        assert pd_isna(row["flags"])


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


@pytest.mark.parametrize("skullstrip", ["template", "deepbet"])
def test_skull_stripping_matches_the_reference_offline(skullstrip, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("preprocessing tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    label = LABELS[0]
    result = preprocess(_scan(label), PreprocessingSpec.create(skullstrip=skullstrip))
    minimum = 0.9 if skullstrip == "template" else 0.95
    assert dice(result.native_mask, _reference(label)) >= minimum
    assert 1000 < result.qc["brain_volume_ml"] < 2000
