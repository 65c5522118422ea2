"""OpenBHB end to end on a miniature with the challenge's layout: pretrain a tiny encoder on the
flat rows -> probe (scores) -> predict the flat rows and the per-subject arrays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from openbhb_mini import make_openbhb  # noqa: E402
from synthetic_runs import one_torch_thread  # noqa: E402

from brainage.cli.main import app  # noqa: E402

TINY = ["--set", "model.kwargs={channels: [4, 8], input_pool: 1, input_bins: 0}",
        "--set", "contrastive.projection=[16, 8]", "--set", "epochs=2",
        "--set", "batch_size=8", "--set", "progress_bar=false", "--set", "accelerator=cpu",
        "--set", "tensorboard=false", "--set", "split.method=openbhb"]

_one_thread = pytest.fixture(autouse=True)(one_torch_thread)


def _ok(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


@pytest.mark.slow
def test_openbhb_pretrain_probe_predict(tmp_path):
    mini = make_openbhb(tmp_path / "openbhb")
    run = tmp_path / "run"
    out = _ok(["pretrain", str(mini / "flat"), str(run), "-c", "contrastive", *TINY])
    assert "encoder" in out and "brainage probe" in out
    info = json.loads((run / "run.json").read_text())
    assert info["kind"] == "encoder" and info["input_shape"] == [12, 15, 12]
    splits = json.loads((run / "splits.json").read_text())
    assert len(splits["folds"][0]["train"]) == 24  # the split column's training subjects

    out = _ok(["probe", str(run), str(mini / "flat"), "-o", str(tmp_path / "probe.json")])
    assert "MAE internal" in out and "score" in out
    metrics = json.loads((tmp_path / "probe.json").read_text())
    member = metrics["members"][0]
    assert (member["n_train"], member["n_internal"], member["n_external"]) == (24, 6, 6)
    assert metrics["n_features"] == 8 and metrics["chance_site_bacc"] == pytest.approx(1 / 3)
    for key in ("mae_internal", "mae_external", "site_bacc", "score", "score_page_text",
                "score_ramp"):
        assert np.isfinite(metrics[key]), key

    _ok(["predict", str(run), str(mini / "flat"), "-o", str(tmp_path / "flat.tsv")])
    _ok(["predict", str(run), str(mini), "-o", str(tmp_path / "subjects.tsv")])
    flat = pd.read_csv(tmp_path / "flat.tsv", sep="\t")
    subjects = pd.read_csv(tmp_path / "subjects.tsv", sep="\t")
    assert len(flat) == len(subjects) == 36
    both = flat.merge(subjects, on="participant_id")  # masked per-subject arrays = flat rows
    np.testing.assert_allclose(both["predicted_age_x"], both["predicted_age_y"], atol=1e-3)
    held_out = pd.read_csv(run / "predictions.tsv", sep="\t").merge(flat, on="participant_id")
    assert len(held_out) == 12
    np.testing.assert_allclose(held_out["predicted_age_x"], held_out["predicted_age_y"],
                               atol=1e-3)
    mae_ext = held_out.loc[held_out["set"] == "external_test", "gap_y"].abs().mean()
    assert mae_ext == pytest.approx(metrics["mae_external"], abs=1e-3)
