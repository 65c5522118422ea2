"""The two-stage cascade: discretization, per-bin spread, out-of-fold stage-1 inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from synthetic_runs import make_prepared, tiny_config

from brainage import runs as rf
from brainage.ages import discretize_age as discretize
from brainage.data.datasets import ScanDataset
from brainage.errors import BrainAgeError
from brainage.evaluation.oof import bin_spread
from brainage.inference.predictor import Predictor
from brainage.models import load_model
from brainage.training.cascade import stage2_config, train_cascade
from brainage.training.config import ModelSpec, OptimSpec, SplitSpec


def test_discretize_rounds_to_5_years_halves_up():
    np.testing.assert_array_equal(discretize([57.4, 57.5, 62.5, 2.4, 87.49]),
                                  [55, 60, 65, 0, 85])


def test_bin_spread_shows_a_collapse():
    s1 = np.array([51, 52, 53, 54, 56, 57, 58, 61.0])  # bins 50, 50, 55, 55, 55, 55, 60, 60
    collapsed = discretize(s1) + 0.3 + np.array([0, 0.01, 0, 0, 0.01, 0, 0, 0])
    healthy = np.array([48.0, 53, 52, 55, 58, 59, 57, 63])
    bad, good = bin_spread(s1, collapsed), bin_spread(s1, healthy)
    assert [b["bin"] for b in bad["bins"]] == [50, 55, 60]
    assert [b["n"] for b in bad["bins"]] == [2, 4, 2]
    assert bad["mean_sd"] < 0.01 and good["mean_sd"] > 1.5
    assert bad["bins"][1]["distinct"] == 1 and good["bins"][1]["distinct"] == 4
    assert bad["distinct_per_scan"] == pytest.approx(3 / 8)  # one value per bin
    assert good["distinct_per_scan"] == 1.0


def test_cascade_needs_kfold(tmp_path):
    with pytest.raises(BrainAgeError, match="k-fold"):
        train_cascade(make_prepared(tmp_path / "p", n=4), tmp_path / "r", tiny_config())


def test_stage2_config_defaults_and_normalisation():
    cfg = tiny_config(model=ModelSpec("scaledense", {"width": 2, "num_blocks": 2}))
    s2 = stage2_config(cfg, None, np.array([20.0, 40.0, 60.0]))
    assert s2.model == ModelSpec("tsan_stage2", {"width": 2, "num_blocks": 2})
    assert (s2.optim.name, s2.optim.lr, s2.optim.weight_decay) == ("sgd", 1e-5, 5e-4)
    norm = stage2_config(cfg, tiny_config(model=ModelSpec("tsan_stage2", {
        "normalise_age": True})), np.array([20.0, 40.0, 60.0]))
    assert norm.model.kwargs["age_mean"] == 40.0
    assert norm.model.kwargs["age_sd"] == pytest.approx(16.33, abs=0.01)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    cohort = make_prepared(tmp_path_factory.mktemp("prep"), n=12, no_age=(5,))
    split = SplitSpec(method="kfold", folds=2, val=0.25, seed=0)
    cfg1 = tiny_config(epochs=1, split=split)
    cfg2 = tiny_config(epochs=1, split=split, optim=OptimSpec("sgd", lr=1e-5),
                       model=ModelSpec("tsan_stage2", {"width": 2, "num_blocks": 2}))
    run = tmp_path_factory.mktemp("runs") / "cascade"
    with pytest.warns(UserWarning, match="no bias correction stored"):
        train_cascade(cohort, run, cfg1, cfg2)
    return cohort, run


def test_cascade_run_folder(cascade):
    _, run = cascade
    info = rf.read_run_info(run)
    assert info.kind == "cascade" and info.stages == {"stage1": "stage1", "stage2": "stage2"}
    for stage in ("stage1", "stage2"):
        assert rf.read_run_info(run / stage).members == ["fold-0", "fold-1"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["bin_spread"]["test"]["bins"] and "stage1" in metrics
    assert (run / "preprocessing_spec.json").is_file() and (run / "predictions.tsv").is_file()


def test_stage2_is_trained_on_out_of_fold_stage1_predictions(cascade):
    cohort, run = cascade
    p1 = pd.read_csv(run / "stage1/predictions.tsv", sep="\t", dtype={"fold": str})
    p2 = pd.read_csv(run / "stage2/predictions.tsv", sep="\t", dtype={"fold": str})
    splits = json.loads((run / "stage1/splits.json").read_text())
    assert json.loads((run / "stage2/splits.json").read_text())["folds"] == splits["folds"]
    for _, row in p1[p1["set"] == "test"].iterrows():  # stage-1 input never seen by its model
        assert row["participant_id"] in splits["folds"][int(row["fold"])]["test"]
    np.testing.assert_allclose(p2["stage1_age"], p1.set_index("participant_id").loc[
        p2["participant_id"], "predicted_age"], atol=1e-3)


def test_cascade_final_age_is_discretized_plus_residual(cascade):
    cohort, run = cascade
    p2 = pd.read_csv(run / "stage2/predictions.tsv", sep="\t", dtype={"fold": str})
    rows = p2[p2["set"] == "test"]
    table = cohort.table.set_index("participant_id").loc[rows["participant_id"]].reset_index()
    ds = ScanDataset.from_table(table, stage1_age=rows["stage1_age"].to_numpy())
    for fold in (0, 1):
        model = load_model(run / f"stage2/fold-{fold}")
        idx = np.flatnonzero(rows["fold"].to_numpy() == str(fold))
        batch = torch.utils.data.default_collate([ds[int(i)] for i in idx])
        with torch.inference_mode():
            residual = model.forward_residual(batch["image"], batch["stage1_age"]).numpy()
        disc = discretize(batch["stage1_age"].numpy())
        np.testing.assert_allclose(disc + residual, rows["predicted_age"].iloc[idx], atol=1e-3)


def test_predictor_on_a_cascade(cascade):
    cohort, run = cascade
    out = Predictor.from_run(run).predict(cohort.table)
    s1 = [load_model(run / f"stage1/fold-{k}") for k in (0, 1)]
    ds = ScanDataset.from_table(cohort.table)
    batch = torch.utils.data.default_collate([ds[i] for i in range(len(ds))])
    with torch.inference_mode():
        stage1 = torch.stack([m(batch["image"]) for m in s1]).mean(0)
        finals = [load_model(run / f"stage2/fold-{k}")(batch["image"], stage1) for k in (0, 1)]
    np.testing.assert_allclose(out["stage1_age"], stage1.numpy(), atol=1e-3)
    np.testing.assert_allclose(out["predicted_age"], torch.stack(finals).mean(0), atol=1e-3)
    assert (out["ensemble_sd"] >= 0).all()


def test_stage2_file_setting_stage1_fields_is_warned_about():
    from brainage.training.cascade import warn_shared_fields
    from brainage.training.config import load_train_config

    stage1 = load_train_config("tsan_cpu", ["devices=2"])
    with pytest.warns(UserWarning, match="sets split, num_workers.*ignored"):
        warn_shared_fields(stage1, load_train_config("tsan_cpu_stage2",
                                                     ["split.folds=3", "num_workers=2"]))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the shipped stage-2 preset sets none of them
        warn_shared_fields(stage1, load_train_config("tsan_cpu_stage2"))
        warn_shared_fields(stage1, None)
