"""``brainage train --synthetic``: leakage rules, seeded age-balanced mixing, run records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from synthetic_runs import GAN_SHAPE, make_prepared, tiny_config, tiny_gan

import brainage
from brainage.errors import BrainAgeError
from brainage.synthesis.synthesize import synthesize
from brainage.training.config import SplitSpec, SyntheticSpec, load_train_config
from brainage.training.gan_fit import train_gan
from brainage.training.synthetic import balance_ages, pick_member, plan_mix

SYN = {"cap": 5, "bin_width": 10.0, "seed": 0, "reuse_pairs": True, "change_map": False}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=16, shape=GAN_SHAPE)


def _synthetic(cohort, root, *changes):
    gan = train_gan(cohort, root / "gan", tiny_gan("epochs=1", "samples=0", *changes))
    return synthesize(gan, root / "syn", **SYN)


@pytest.fixture(scope="module")
def per_fold(cohort, tmp_path_factory):
    return _synthetic(cohort, tmp_path_factory.mktemp("kf"), "split.method=kfold",
                      "split.folds=2")


def _config(**changes):
    return tiny_config(epochs=1, split=SplitSpec("kfold", folds=2, val=0.0), **changes)


def test_children_join_only_the_training_sets_of_their_gan_folds(cohort, per_fold, tmp_path):
    run = brainage.train(cohort, tmp_path / "run", _config(), synthetic=per_fold,
                         synthetic_ratio=0.5)
    card = json.loads((run / "model_card.json").read_text())["synthetic"]
    splits = json.loads((run / "splits.json").read_text())
    assert splits == json.loads((per_fold / "splits.json").read_text())  # the GAN's folds
    participants = pd.read_csv(per_fold / "participants.tsv", sep="\t")
    for fold in card["folds"]:
        k = fold["fold"]
        assert fold["gan_member"] == f"fold-{k}" and fold["real_train"] == 8
        assert fold["used"] == min(4, fold["eligible"]) and fold["used"] > 0
        kids = participants[participants["gan_fold"] == k]
        assert fold["eligible"] == len(kids)  # every child of the fold's GAN is eligible
    preds = pd.read_csv(run / "predictions.tsv", sep="\t")
    assert not preds["participant_id"].str.startswith("sub-syn").any() and len(preds) == 16
    saved = load_train_config(run / "config.yaml").synthetic
    assert saved == SyntheticSpec(str(per_fold.resolve()), 0.5, "age", 0)


def test_fold_data_puts_children_in_train_only(cohort, per_fold):
    spec = SyntheticSpec(str(per_fold), 1.0)
    from brainage.training.fit import resolve_splits

    splits = resolve_splits(per_fold, cohort, _config(), per_fold / "splits.json")
    mix = plan_mix(spec, cohort, splits)
    table, augmented = mix.fold_data(cohort.table, splits, 0)
    chosen = set(mix.folds[0].chosen)
    assert chosen and chosen <= set(augmented.folds[0]["train"])
    assert not chosen & set(augmented.folds[0]["test"]) and augmented.folds[1] == splits.folds[1]
    rows = table[table["participant_id"].isin(chosen)]
    assert len(rows) == len(chosen) and rows["array_path"].str.contains("sub-syn").all()


def test_a_gan_that_saw_every_subject_cannot_feed_cross_validation(cohort, tmp_path):
    everyone = _synthetic(cohort, tmp_path)  # split.method=all: one GAN on all 16
    with pytest.raises(BrainAgeError, match="saw subjects that are not training subjects"):
        brainage.train(cohort, tmp_path / "run", _config(), synthetic=everyone)
    assert not (tmp_path / "run").exists()


def test_other_splits_than_the_gans_are_refused(cohort, per_fold, tmp_path):
    from brainage.data.splits import make_splits

    other = tmp_path / "splits-7.json"
    make_splits(cohort.cohort(), "kfold", k=2, seed=7).to_json(other)
    with pytest.raises(BrainAgeError, match="fold 0: the GAN"):
        brainage.train(cohort, tmp_path / "run", _config(), splits=other, synthetic=per_fold)
    assert not (tmp_path / "run").exists()


def test_pick_member_prefers_the_fold_then_the_largest():
    members = [{"member": "a", "fold": 0, "seen": ["x"]},
               {"member": "b", "fold": 1, "seen": ["x", "y"]},
               {"member": "c", "fold": 2, "seen": ["z"]}]
    assert pick_member(members, {"x", "y"}, 0)["member"] == "a"
    assert pick_member(members, {"x", "y"}, 2)["member"] == "b"
    assert pick_member(members, {"q"}, 0) is None


def test_age_balancing_fills_the_emptiest_bins_and_is_seeded():
    real = np.array([20.0] * 5 + [30.0] * 1 + [40.0] * 3)
    rows = pd.DataFrame({"participant_id": [f"k{i}" for i in range(12)],
                         "age_bin": [20] * 4 + [30] * 4 + [40] * 4})
    chosen = balance_ages(real, rows, 5, "age", seed=0, width=1.0)
    bins = rows.set_index("participant_id").loc[chosen, "age_bin"].tolist()
    assert 20 not in bins and bins.count(30) >= 3  # 20 is full; 30 (1 real) first
    assert chosen == balance_ages(real, rows, 5, "age", seed=0, width=1.0)
    assert chosen != rows["participant_id"].tolist()[:5]  # not file order
    random = balance_ages(real, rows, 5, "random", seed=0)
    assert len(set(random)) == 5 and random == balance_ages(real, rows, 5, "random", seed=0)
    assert len(balance_ages(real, rows, 50, "age", seed=0)) == 12
