"""Training runs: run folder, determinism, resume, missing ages, out-of-fold predictions."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from synthetic_runs import make_prepared, tiny_config

from brainage import runs as rf
from brainage.data.datasets import ScanDataset
from brainage.errors import BrainAgeError
from brainage.models import load_model
from brainage.models.engine import predict_dataset
from brainage.training import fit as train_mod
from brainage.training.config import ModelSpec, SplitSpec, TrainConfig, load_train_config
from brainage.training.fit import train_cohort
from brainage.training.trainer import best_weights


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=16, no_age=(3,))


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    with pytest.warns(UserWarning, match="without an age"):
        return train_cohort(cohort, tmp_path_factory.mktemp("runs") / "a", tiny_config())


def _weights(run_dir):
    return load_file(str(run_dir / "weights.safetensors"))


def test_run_folder_holds_everything_needed_to_predict(run, cohort):
    for name in ("weights.safetensors", "model.json", "config.yaml", "preprocessing_spec.json",
                 "splits.json", "metrics.json", "model_card.json", "run.json",
                 "predictions.tsv", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert list((run / "logs").glob("version_*/metrics.csv"))
    info = rf.read_run_info(run)
    assert info.members == ["."] and info.spec_hash == cohort.spec.hash
    assert info.input_shape == [20, 24, 18]
    assert load_train_config(run / "config.yaml") == tiny_config()
    card = json.loads((run / "model_card.json").read_text())
    assert "not for diagnosis" in card["intended_use"]
    assert card["preprocessing"]["hash"] == cohort.spec.hash
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["uncorrected"]) == {"val", "test"}
    from importlib.metadata import version

    versions = info.extra["environment"]
    assert versions == card["environment"]
    assert (versions["torch"], versions["lightning"]) == (version("torch"), version("lightning"))
    assert versions["brainage"] and "cuda" in versions  # None on a machine without CUDA


def test_run_json_that_was_tampered_with_is_refused(run, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run, bad)
    data = json.loads((bad / "run.json").read_text())
    for field, value, message in (("members", ["../../elsewhere"], "outside the run folder"),
                                  ("members", ["/etc"], "outside the run folder"),
                                  ("training_range", [80, 20], "training_range"),
                                  ("training_range", "old", "wrong type"),
                                  ("input_shape", [20, -1, 18], "input_shape")):
        (bad / "run.json").write_text(json.dumps({**data, field: value}))
        with pytest.raises(ValueError, match=message):
            rf.read_run_info(bad)


def test_subject_without_age_is_not_trained_on_but_predicted(run, cohort):
    splits = json.loads((run / "splits.json").read_text())
    assert splits["unlabelled"] == ["sub-03"]
    assert all("sub-03" not in ids for f in splits["folds"] for ids in f.values())
    preds = pd.read_csv(run / "predictions.tsv", sep="\t")
    row = preds[preds["participant_id"] == "sub-03"].iloc[0]
    assert row["set"] == "unlabelled" and np.isfinite(row["predicted_age"])
    train_ids = set(splits["folds"][0]["train"])
    assert not train_ids & set(preds["participant_id"])  # training scans are not reported
    lo, hi = rf.read_run_info(run).training_range
    ages = cohort.table.set_index("participant_id").loc[sorted(train_ids), "age"]
    assert (lo, hi) == (ages.min(), ages.max())


def test_saved_predictions_come_from_the_best_checkpoint(run, cohort):
    model = load_model(run)
    best = best_weights(run / "checkpoints" / "best.ckpt")
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())
    preds = pd.read_csv(run / "predictions.tsv", sep="\t").set_index("participant_id")
    table = cohort.table.set_index("participant_id").loc[preds.index].reset_index()
    again = predict_dataset(model, ScanDataset.from_table(table), batch_size=3)
    np.testing.assert_allclose(again, preds["predicted_age"], atol=1e-3)


def test_same_seed_gives_identical_weights(run, cohort, tmp_path):
    with pytest.warns(UserWarning, match="no bias correction stored"):
        other = train_cohort(cohort, tmp_path / "b", tiny_config())
    a, b = _weights(run), _weights(other)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Interrupt(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted(run, cohort, tmp_path, monkeypatch):
    original = train_mod.fit_member

    def interrupted(*args, **kwargs):
        return original(*args, **{**kwargs, "callbacks": [_Interrupt()]})

    monkeypatch.setattr(train_mod, "fit_member", interrupted)
    with pytest.warns(UserWarning, match="without an age"), \
            pytest.raises((KeyboardInterrupt, SystemExit)):
        train_cohort(cohort, tmp_path / "c", tiny_config())
    assert (tmp_path / "c/checkpoints/last.ckpt").exists()
    assert not (tmp_path / "c/run.json").exists()
    with pytest.raises(BrainAgeError, match="training did not finish"):
        rf.read_run_info(tmp_path / "c")
    monkeypatch.setattr(train_mod, "fit_member", original)
    with pytest.warns(UserWarning, match="no bias correction stored"):
        train_cohort(cohort, tmp_path / "c", tiny_config())
    a, c = _weights(run), _weights(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a)
    last_a = best_weights(run / "checkpoints/last.ckpt")
    last_c = best_weights(tmp_path / "c/checkpoints/last.ckpt")
    assert all(torch.equal(last_a[k], last_c[k]) for k in last_a)  # epoch 3, not just best
    epochs = pd.concat(pd.read_csv(f) for f in (tmp_path / "c/logs").glob("*/metrics.csv"))
    assert sorted(epochs["epoch"].dropna().unique()) == [0, 1, 2]


def test_resume_refuses_another_config(run, cohort):
    with pytest.raises(BrainAgeError, match="another configuration"):
        train_cohort(cohort, run, tiny_config(epochs=5))


def test_kfold_predictions_are_out_of_fold(cohort, tmp_path):
    cfg = tiny_config(epochs=1, split=SplitSpec(method="kfold", folds=3, val=0.2, seed=1))
    with pytest.warns(UserWarning, match="no bias correction stored"):
        run = train_cohort(cohort, tmp_path / "k", cfg)
    splits = json.loads((run / "splits.json").read_text())
    preds = pd.read_csv(run / "predictions.tsv", sep="\t", dtype={"fold": str})
    assert rf.read_run_info(run).members == ["fold-0", "fold-1", "fold-2"]
    labelled = preds[preds["age"].notna()]
    assert len(labelled) == 15 and set(labelled["set"]) == {"test"}
    table = cohort.table.set_index("participant_id")
    for fold in range(3):
        rows = labelled[labelled["fold"] == str(fold)]
        assert set(rows["participant_id"]) == set(splits["folds"][fold]["test"])
        assert not set(rows["participant_id"]) & set(splits["folds"][fold]["train"])
        model = load_model(run / f"fold-{fold}")
        sub = table.loc[rows["participant_id"]].reset_index()
        mine = predict_dataset(model, ScanDataset.from_table(sub), batch_size=4)
        np.testing.assert_allclose(mine, rows["predicted_age"], atol=1e-3)
    unlabelled = preds[preds["set"] == "unlabelled"]
    assert unlabelled["fold"].tolist() == ["0,1,2"] and "ensemble_sd" in preds


def test_repeats_train_seeded_members_per_fold_and_average_them(cohort, tmp_path):
    cfg = tiny_config(epochs=1, repeats=2,
                      split=SplitSpec(method="kfold", folds=2, val=0.0, seed=1))
    with pytest.warns(UserWarning, match="no bias correction stored"):
        run = train_cohort(cohort, tmp_path / "r", cfg)
    names = ["fold-0-seed-0", "fold-0-seed-1", "fold-1-seed-0", "fold-1-seed-1"]
    assert rf.read_run_info(run).members == names
    preds = pd.read_csv(run / "predictions.tsv", sep="\t", dtype={"fold": str})
    labelled = preds[preds["age"].notna()].set_index("participant_id")
    table = cohort.table.set_index("participant_id")
    for fold in ("0", "1"):
        ids = labelled.index[labelled["fold"] == fold]
        sub = table.loc[ids].reset_index()
        each = [predict_dataset(load_model(run / f"fold-{fold}-seed-{r}"),
                                ScanDataset.from_table(sub), batch_size=4) for r in (0, 1)]
        assert not np.allclose(each[0], each[1])  # different seeds, different models
        np.testing.assert_allclose(labelled.loc[ids, "predicted_age"], np.mean(each, axis=0),
                                   atol=1e-3)
        np.testing.assert_allclose(labelled.loc[ids, "ensemble_sd"],
                                   np.std(each, axis=0), atol=1e-3)


def test_no_trainable_scan_is_refused(tmp_path):
    cohort = make_prepared(tmp_path / "p", n=4, no_age=(0, 1, 2, 3))
    with pytest.raises(BrainAgeError, match="no prepared scan has an age"):
        train_cohort(cohort, tmp_path / "r", tiny_config())


def test_config_presets_load_by_name():
    from brainage.models import model_info
    from brainage.training.presets import list_presets

    tsan = load_train_config("tsan")
    assert (tsan.optim.name, tsan.optim.lr, tsan.optim.weight_decay, tsan.optim.amsgrad) == \
        ("adam", 1e-3, 5e-4, True)
    assert (tsan.scheduler.factor, tsan.scheduler.patience, tsan.early_stopping,
            tsan.epochs, tsan.batch_size) == (0.5, 5, 20, 150, 32)
    stage2 = load_train_config("tsan_stage2")  # inherits: tsan
    assert (stage2.optim.name, stage2.optim.lr, stage2.model.name) == ("sgd", 1e-5,
                                                                       "tsan_stage2")
    assert (stage2.scheduler, stage2.epochs, stage2.loss) == (tsan.scheduler, 150, tsan.loss)
    assert load_train_config("quickstart") == TrainConfig()
    assert load_train_config("sfcn").loss.name == "soft_label"
    cpu, cpu2 = load_train_config("tsan_cpu"), load_train_config("tsan_cpu_stage2")
    assert cpu2.model.name == "tsan_stage2" and cpu2.model.kwargs["normalise_age"] is True
    assert (cpu2.optim, cpu2.epochs, cpu2.split) == (cpu.optim, cpu.epochs, cpu.split)
    assert set(list_presets()) >= {"quickstart", "tsan", "tsan_stage2", "sfcn", "tsan_cpu",
                                   "tsan_cpu_stage2"}
    for name in list_presets():
        model = load_train_config(name).model
        assert set(model.kwargs) <= set(model_info(model.name).default_kwargs), name


def test_inherits_chains_files_and_refuses_loops(tmp_path):
    (tmp_path / "base.yaml").write_text("inherits: tsan_cpu\nepochs: 7\n")
    (tmp_path / "child.yaml").write_text("inherits: base.yaml\nbatch_size: 3\n")
    child = load_train_config(tmp_path / "child.yaml")
    assert (child.epochs, child.batch_size, child.model.name) == (7, 3, "scaledense")
    (tmp_path / "a.yaml").write_text("inherits: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherits: a.yaml\n")
    with pytest.raises(BrainAgeError, match="loop"):
        load_train_config(tmp_path / "a.yaml")
    with pytest.raises(BrainAgeError, match="unknown preset 'tsan_cpx'.*Did you mean 'tsan_cpu'"):
        load_train_config("tsan_cpx")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_train_config(tmp_path / "missing.yaml")


def test_augmentation_is_for_training_only(cohort):
    from brainage.data.splits import train_val_test
    from brainage.training.config import AugmentSpec

    splits = train_val_test(cohort.cohort(), val=0.25, test=0.25)
    data = train_mod.fold_data(tiny_config(augment=AugmentSpec(enabled=True)), cohort.table,
                               splits, 0)
    assert data.train_set.transform is not None and data.val_set.transform is None
    plain = train_mod.fold_data(tiny_config(), cohort.table, splits, 0)
    assert plain.train_set.transform is None  # TSAN used none: off by default
    image = data.train_set[0]["image"]
    assert image.shape == (1, 20, 24, 18) and not torch.equal(image, plain.train_set[0]["image"])


def test_cached_input_stage_trains_exactly_as_staging_every_step(cohort, tmp_path, monkeypatch):
    from brainage.training.datamodule import BrainAgeDataModule

    model = ModelSpec("sfcn", {"channels": [4, 8, 4], "dropout": 0.2, "input_pool": 2,
                               "input_bins": 3})
    cfg = tiny_config(model=model, epochs=2)
    staged = []
    original = BrainAgeDataModule.stage_inputs

    def spy(self, stage, **kwargs):
        staged.append(original(self, stage, **kwargs))
        return staged[-1]

    monkeypatch.setattr(BrainAgeDataModule, "stage_inputs", spy)
    with pytest.warns(UserWarning, match="no bias correction stored"):
        cached = train_cohort(cohort, tmp_path / "cached", cfg)
    assert staged == [True]
    monkeypatch.setattr(BrainAgeDataModule, "stage_inputs", lambda self, stage, **kw: False)
    with pytest.warns(UserWarning, match="no bias correction stored"):
        plain = train_cohort(cohort, tmp_path / "plain", cfg)
    a, b = _weights(cached), _weights(plain)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)
    preds = [pd.read_csv(r / "predictions.tsv", sep="\t")["predicted_age"] for r in (cached, plain)]
    np.testing.assert_allclose(preds[0], preds[1], atol=1e-3)


def test_a_run_folder_in_training_is_locked_against_a_second_start(cohort, tmp_path):
    from brainage import locks
    from brainage.training.fit import LOCK_FILE

    run = tmp_path / "locked"
    with locks.hold(run / LOCK_FILE, what="a test"):
        with pytest.raises(BrainAgeError, match="in use by pid .* Fix: wait"):
            train_cohort(cohort, run, tiny_config(epochs=1))
        assert not (run / "config.yaml").exists()  # the second start wrote nothing
    with pytest.warns(UserWarning, match="no bias correction stored"):
        train_cohort(cohort, run, tiny_config(epochs=1))  # released: trains
    assert (run / "run.json").is_file() and not (run / LOCK_FILE).exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "pickled object"])
def test_a_damaged_last_checkpoint_is_refused_clearly_on_resume(run, cohort, tmp_path, damage):
    import shutil

    from brainage.models.io import WEIGHTS

    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    for name in ("run.json", WEIGHTS):
        (broken / name).unlink()  # an unfinished run that will resume from last.ckpt
    last = broken / "checkpoints" / "last.ckpt"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    elif damage == "empty":
        last.write_bytes(b"")
    else:
        import argparse  # any class outside torch's allow-list of plain types

        torch.save({"state_dict": {}, "args": argparse.Namespace(a=1)}, last)
    with pytest.raises(BrainAgeError, match=r"last.ckpt: .*Fix: delete it") as info:
        train_cohort(cohort, broken, tiny_config())
    assert "weights_only" not in str(info.value)


def test_training_on_a_folder_whose_spec_file_was_replaced_says_so(cohort, tmp_path):
    import shutil

    from synthetic_runs import spec_for_tests

    swapped = tmp_path / "swapped"
    shutil.copytree(cohort.root, swapped)
    spec_for_tests(n4=False).save(swapped / "preprocessing_spec.json")
    with pytest.raises(BrainAgeError, match="the spec file was replaced") as info:
        train_cohort(swapped, tmp_path / "run", tiny_config())
    assert "no scan was prepared successfully" not in str(info.value)
    assert not (tmp_path / "run").exists()
