"""``brainage probe``'s engine: the challenge protocol on encoder and supervised runs, the
stored ridge, prediction with a probed encoder run, and the refusal to score seen subjects."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from synthetic_runs import make_prepared, one_torch_thread, tiny_config  # noqa: E402

from brainage import Predictor  # noqa: E402
from brainage.data.datasets import ScanDataset  # noqa: E402
from brainage.data.splits_file import Splits  # noqa: E402
from brainage.errors import BrainAgeError  # noqa: E402
from brainage.estimators.readout import RidgeReadout  # noqa: E402
from brainage.estimators.representation import ProbeNotFittedError  # noqa: E402
from brainage.evaluation.probe_run import probe_roles, probe_run  # noqa: E402
from brainage.evaluation.probes import ProbeSplit, openbhb_probes  # noqa: E402
from brainage.inference.encoders import extract, load_member  # noqa: E402
from brainage.preprocessing.prepared import COHORT_FILE, open_prepared  # noqa: E402
from brainage.training.config import ContrastiveSpec, LossSpec, SplitSpec  # noqa: E402
from brainage.training.fit import train_cohort  # noqa: E402
from brainage.training.pretrain import pretrain_cohort  # noqa: E402

_one_thread = pytest.fixture(autouse=True, scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """24 scans at three sites A, B, C (C will be the unseen site)."""
    root = tmp_path_factory.mktemp("prep")
    make_prepared(root, n=24)
    table = pd.read_csv(root / COHORT_FILE, sep="\t")
    table["site"] = ["ABC"[i % 3] for i in range(len(table))]
    table.to_csv(root / COHORT_FILE, sep="\t", index=False)
    return open_prepared(root)


@pytest.fixture(scope="module")
def sites_split(cohort):
    """Train on A and B, internal test on some A and B, external test on C."""
    t = cohort.table
    ab = t.loc[t["site"] != "C", "participant_id"].tolist()
    fold = {"train": ab[:12], "internal_test": ab[12:],
            "external_test": t.loc[t["site"] == "C", "participant_id"].tolist()}
    return Splits("user", None, {}, [fold])


@pytest.fixture(scope="module")
def encoder_run(cohort, sites_split, tmp_path_factory):
    config = tiny_config(loss=LossSpec("contrastive", {"sigma": 5.0}), epochs=2,
                         contrastive=ContrastiveSpec(projection=[16, 8]))
    return pretrain_cohort(cohort, tmp_path_factory.mktemp("r") / "enc", config, sites_split)


@pytest.fixture(scope="module")
def probed(encoder_run, cohort):
    return probe_run(encoder_run, cohort, cv=3)


def test_probe_metrics_follow_the_challenge(probed, encoder_run, cohort, sites_split):
    assert json.loads((encoder_run / "probe_metrics.json").read_text()) == probed
    assert (probed["representation"], probed["n_features"]) == ("projection", 8)
    member = probed["members"][0]
    assert (member["n_train"], member["n_internal"], member["n_external"]) == (12, 4, 8)
    assert probed["chance_site_bacc"] == 0.5 and 0 <= probed["site_bacc"] <= 1
    # the same numbers as the challenge function on the same representation
    x = extract(load_member(encoder_run), ScanDataset.from_table(cohort.table))
    roles = probe_roles(cohort.table, sites_split, 0).to_numpy()
    age, site = cohort.table["age"].to_numpy(float), cohort.table["site"].to_numpy()
    sets = [ProbeSplit(x[roles == r], age[roles == r], site[roles == r])
            for r in ("train", "internal", "external")]
    expected = openbhb_probes(*sets, cv=3).to_dict()
    for key in ("mae_internal", "mae_external", "site_bacc", "score", "score_page_text",
                "score_ramp"):
        assert probed[key] == pytest.approx(expected[key], rel=1e-6), key
    assert (member["best_alpha"], member["best_C"]) == (expected["best_alpha"],
                                                        expected["best_C"])
    assert probed["score"] == pytest.approx(probed["mae_external"] * probed["site_bacc"] ** 0.3)


def test_the_ridge_is_stored_and_predict_uses_it(probed, encoder_run, cohort):
    readout = RidgeReadout.load(encoder_run)
    meta = json.loads((encoder_run / "age_probe.json").read_text())
    alpha = probed["members"][0]["best_alpha"]
    assert (meta["n_features"], meta["alpha"], meta["fitted_on"]) == (8, alpha, 12)
    table = Predictor.from_run(encoder_run).predict(cohort.root)
    x = extract(load_member(encoder_run), ScanDataset.from_table(cohort.table))
    np.testing.assert_allclose(table["predicted_age"], readout.predict(x), atol=1e-3)
    held_out = pd.read_csv(encoder_run / "predictions.tsv", sep="\t")
    assert set(held_out["set"]) == {"internal_test", "external_test"} and len(held_out) == 12
    merged = held_out.merge(table, on="participant_id")
    np.testing.assert_allclose(merged["predicted_age_x"], merged["predicted_age_y"], atol=1e-3)
    metrics = json.loads((encoder_run / "metrics.json").read_text())
    assert metrics["uncorrected"]["external_test"]["mae"] == pytest.approx(
        probed["mae_external"], abs=1e-3)


def test_an_unprobed_encoder_run_does_not_predict(cohort, tmp_path):
    config = tiny_config(loss=LossSpec("contrastive"), epochs=1,
                         contrastive=ContrastiveSpec(projection=[8]),
                         split=SplitSpec("holdout", val=0.0, test=0.25))
    run = pretrain_cohort(cohort, tmp_path / "enc", config)
    with pytest.raises(FileNotFoundError, match="brainage probe RUN DATA"):
        Predictor.from_run(run)


def test_a_supervised_run_is_probed_on_its_features(cohort, sites_split, tmp_path):
    run = train_cohort(cohort, tmp_path / "sup", tiny_config(epochs=1), sites_split)
    before = (run / "predictions.tsv").read_text()
    out = probe_run(run, cohort, tmp_path / "m.json", cv=3)
    assert (out["representation"], out["n_features"]) == ("features", 4)  # SFCN's last width
    assert out["mae_external"] is not None and out["score"] is not None
    assert (run / "predictions.tsv").read_text() == before  # its own predictions are kept
    assert json.loads((tmp_path / "m.json").read_text())["members"][0]["n_train"] == 12


def test_test_subjects_the_run_trained_on_are_refused(encoder_run, cohort, sites_split,
                                                      tmp_path):
    fold = dict(sites_split.folds[0])
    fold["train"], fold["internal_test"] = fold["internal_test"], fold["train"]
    swapped = Splits("user", None, {}, [fold])
    with pytest.raises(BrainAgeError, match="training subjects of member"):
        probe_run(encoder_run, cohort, tmp_path / "x.json", splits=swapped, cv=3)
    assert not (tmp_path / "x.json").exists()


def test_without_an_unseen_site_the_external_metrics_are_missing(cohort, tmp_path):
    t = cohort.table
    fold = {"train": t["participant_id"][:16].tolist(), "test": t["participant_id"][16:].tolist()}
    splits = Splits("user", None, {}, [fold])
    roles = probe_roles(t, splits, 0)
    assert set(roles.dropna()) == {"train", "internal"}  # every test site was seen
    run = train_cohort(cohort, tmp_path / "sup", tiny_config(epochs=1), splits)
    out = probe_run(run, cohort, cv=3)
    assert out["mae_external"] is None and out["score"] is None
    assert out["mae_internal"] > 0 and 0 <= out["site_bacc"] <= 1


def test_readout_contract(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5))
    age = x @ np.arange(1.0, 6.0) + 40
    with pytest.raises(ProbeNotFittedError, match="RidgeReadout is not fitted yet"):
        RidgeReadout().predict(x)
    readout = RidgeReadout(alpha=0.01).fit(x, age)
    np.testing.assert_allclose(readout.predict(x), age, atol=0.05)
    loaded = RidgeReadout.load(readout.save(tmp_path, note="test"))
    np.testing.assert_array_equal(loaded.predict(x), readout.predict(x))
    with pytest.raises(BrainAgeError, match="fitted on 5"):
        loaded.predict(x[:, :4])
    with pytest.raises(FileNotFoundError, match="brainage probe"):
        RidgeReadout.load(tmp_path / "nothing")


def test_a_kfold_encoder_run_is_probed_fold_by_fold(cohort, tmp_path):
    config = tiny_config(loss=LossSpec("contrastive"), epochs=1,
                         contrastive=ContrastiveSpec(projection=[8]),
                         split=SplitSpec("kfold", folds=2, val=0.0))
    run = pretrain_cohort(cohort, tmp_path / "enc", config)
    out = probe_run(run, cohort, cv=3)
    assert [m["member"] for m in out["members"]] == ["fold-0", "fold-1"]
    assert all(m["n_train"] == 12 and m["n_internal"] == 12 for m in out["members"])
    preds = pd.read_csv(run / "predictions.tsv", sep="\t")
    assert len(preds) == 24 and set(preds["fold"].astype(str)) == {"0", "1"}  # out of fold
    table = Predictor.from_run(run).predict(cohort.root)  # the two encoders averaged
    a = RidgeReadout.load(run / "fold-0").predict(
        extract(load_member(run / "fold-0"), ScanDataset.from_table(cohort.table)))
    b = RidgeReadout.load(run / "fold-1").predict(
        extract(load_member(run / "fold-1"), ScanDataset.from_table(cohort.table)))
    np.testing.assert_allclose(table["predicted_age"], (a + b) / 2, atol=1e-3)
    assert "ensemble_sd" in table
