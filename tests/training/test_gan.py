"""TGB-GAN training: run folder, best checkpoint, subjects seen, determinism, resume, checks."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from synthetic_runs import GAN_SHAPE, make_prepared, tiny_gan

from brainage import runs as rf
from brainage.errors import BrainAgeError
from brainage.training import gan_fit
from brainage.training.gan_config import load_gan_config
from brainage.training.gan_fit import holdout_subjects, train_gan
from brainage.training.trainer import best_weights


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=12, shape=GAN_SHAPE)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    return train_gan(cohort, tmp_path_factory.mktemp("gan") / "a", tiny_gan())


def _generator(run_dir):
    return load_file(str(run_dir / "generator" / "weights.safetensors"))


def test_run_folder_holds_the_networks_samples_and_subjects(run, cohort):
    for name in ("run.json", "config.yaml", "splits.json", "metrics.json", "model_card.json",
                 "preprocessing_spec.json", "generator/weights.safetensors",
                 "critic/model.json", "regressor/model.json", "subjects.json",
                 "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "epoch-000.png", "epoch-001.png", "epoch-002.png"]
    info = rf.read_run_info(run)
    assert info.kind == "gan" and info.members == ["."] and info.spec_hash == cohort.spec.hash
    assert info.extra["run_id"].startswith("gan-") and len(info.extra["run_id"]) == 16
    subjects = json.loads((run / "subjects.json").read_text())
    assert len(subjects["holdout"]) == 3 and not set(subjects["holdout"]) & set(subjects["train"])
    assert sorted(subjects["seen"]) == sorted(cohort.table["participant_id"])
    assert load_gan_config(run / "config.yaml") == tiny_gan()


def test_the_saved_generator_is_the_best_epoch_by_held_out_l1(run):
    logs = pd.read_csv(next((run / "logs").glob("*/metrics.csv")))
    val = logs.dropna(subset=["val_l1"]).set_index("epoch")["val_l1"]
    metrics = json.loads((run / "metrics.json").read_text())["members"]["."]
    assert metrics["best_epoch"] == int(val.idxmin())
    assert metrics["val_l1"] == pytest.approx(val.min())
    best = best_weights(run / "checkpoints" / "best.ckpt", "generator.")
    saved = _generator(run)
    assert saved.keys() == best.keys() and all(torch.equal(saved[k], best[k]) for k in saved)


def test_optimiser_steps_follow_the_accumulation(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # 9 training scans, batch 3: 3 batches per epoch, windows of 2 -> 2 steps per optimiser
    assert ckpt["global_step"] == 3 * 2 * 2
    lr = [g["lr"] for o in ckpt["optimizer_states"] for g in o["param_groups"]]
    assert lr == [0.003, 0.003]  # the x0.8 step comes after 10 epochs
    first = load_file(str(run / "critic" / "weights.safetensors"))
    assert all(torch.isfinite(v).all() for v in first.values())


def test_same_config_gives_identical_weights(run, cohort, tmp_path):
    other = train_gan(cohort, tmp_path / "b", tiny_gan())
    a, b = _generator(run), _generator(other)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rf.read_run_info(run).extra["run_id"] == rf.read_run_info(other).extra["run_id"]


class _Interrupt(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 2:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted(run, cohort, tmp_path, monkeypatch):
    original = gan_fit.fit_gan_member
    monkeypatch.setattr(gan_fit, "fit_gan_member",
                        lambda *a, **k: original(*a, **{**k, "callbacks": [_Interrupt()]}))
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train_gan(cohort, tmp_path / "c", tiny_gan())
    assert not (tmp_path / "c" / "run.json").exists()
    monkeypatch.setattr(gan_fit, "fit_gan_member", original)
    train_gan(cohort, tmp_path / "c", tiny_gan())
    for ckpt in ("last.ckpt", "best.ckpt"):
        a = best_weights(run / "checkpoints" / ckpt, "critic.")
        c = best_weights(tmp_path / "c" / "checkpoints" / ckpt, "critic.")
        assert all(torch.equal(a[k], c[k]) for k in a), ckpt


def test_kfold_members_never_see_their_test_subjects(cohort, tmp_path):
    run = train_gan(cohort, tmp_path / "k", tiny_gan("split.method=kfold", "split.folds=3",
                                                     "epochs=1", "samples=0"))
    splits = json.loads((run / "splits.json").read_text())
    assert rf.read_run_info(run).members == ["fold-0", "fold-1", "fold-2"]
    for k, fold in enumerate(splits["folds"]):
        seen = json.loads((run / f"fold-{k}" / "subjects.json").read_text())["seen"]
        assert sorted(seen) == sorted(fold["train"]) and not set(seen) & set(fold["test"])
        assert not (run / f"fold-{k}" / "samples").exists()


def test_ablations_leave_out_the_unused_networks(cohort, tmp_path):
    no_task = train_gan(cohort, tmp_path / "nt", tiny_gan("objective.beta=0", "epochs=1"))
    assert (no_task / "critic").is_dir() and not (no_task / "regressor").exists()
    plain = train_gan(cohort, tmp_path / "ae", tiny_gan("objective.beta=0", "epochs=1",
                                                       "objective.adversarial=0"))
    assert not (plain / "critic").exists() and (plain / "generator").is_dir()
    ckpt = torch.load(plain / "checkpoints" / "last.ckpt", weights_only=True)
    assert len(ckpt["optimizer_states"]) == 1 and ckpt["global_step"] == 2


def test_bad_configs_are_refused_before_anything_is_written(cohort, tmp_path):
    with pytest.raises(BrainAgeError, match="multiples of 8"):
        train_gan(cohort, tmp_path / "x", tiny_gan("generator.kwargs.encoder_channels=[4,4,4]",
                                                   "generator.kwargs.decoder_channels=[4,4,4]"))
    with pytest.raises(BrainAgeError, match="critic network"):
        train_gan(cohort, tmp_path / "x", tiny_gan("generator.name=tgbgan_critic"))
    with pytest.raises(BrainAgeError, match="objective.beta"):
        tiny_gan("objective.beta=-1")
    with pytest.raises(BrainAgeError, match="plateau"):
        tiny_gan("scheduler.name=plateau")
    assert not (tmp_path / "x").exists()


def test_resume_refuses_another_config(run, cohort):
    with pytest.raises(BrainAgeError, match="another configuration"):
        train_gan(cohort, run, tiny_gan("epochs=4"))


def test_holdout_is_seeded_and_spread_over_ages():
    ids = [f"s{i:02d}" for i in range(20)]
    ages = pd.Series(range(20, 40), index=ids, dtype=float)
    held = holdout_subjects(ids, ages, 0.2, seed=3)
    assert held == holdout_subjects(ids, ages, 0.2, seed=3) and len(held) == 4
    gaps = sorted(ages[held])
    assert min(b - a for a, b in zip(gaps, gaps[1:], strict=False)) >= 4  # one per age quarter
    assert holdout_subjects(ids[:1], ages, 0.5, 0) == [] and holdout_subjects(ids, ages, 0, 0) == []


@pytest.mark.parametrize("name, shape", [("tgbgan", (96, 96, 96)), ("tgbgan_no_task", (96,) * 3),
                                         ("tgbgan_cpu", (32, 32, 32)),
                                         ("tgbgan_cpu_no_task", (32, 32, 32))])
def test_presets_build_on_their_grids(name, shape):
    from brainage.training.checks import check_gan_config
    from brainage.training.presets import list_presets

    assert name in list_presets("gan") and name not in list_presets("train")
    config = load_gan_config(name)
    check_gan_config(config, shape)  # meta device: no memory, no compute
    assert config.uses_task == (not name.endswith("no_task")) and config.uses_critic
    if name.startswith("tgbgan_cpu"):
        return
    o = config.objective
    assert (o.alpha, o.gp_weight, config.optim.lr, config.critic_optim.lr) == (10, 10, 1e-4, 1e-4)
    assert (config.scheduler.step_size, config.scheduler.gamma, config.epochs) == (10, 0.8, 100)
    assert config.batch_size * config.accumulate == 20


def test_without_held_out_subjects_the_last_epoch_is_kept(cohort, tmp_path):
    with pytest.warns(UserWarning, match="no held-out subjects"):
        run = train_gan(cohort, tmp_path / "nh", tiny_gan("split.holdout=0", "epochs=2"))
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["global_step"] == 2 * 2 * 2  # 12 scans: 4 batches
    saved, kept = _generator(run), best_weights(last, "generator.")
    assert all(torch.equal(saved[k], kept[k]) for k in saved)
    metrics = json.loads((run / "metrics.json").read_text())["members"]["."]
    assert metrics["val_l1"] is None and metrics["best_epoch"] == 1
    assert len(list((run / "samples").glob("*.png"))) == 2  # drawn from training scans


def test_given_splits_train_each_gan_on_its_train_role_only(cohort, tmp_path):
    from brainage.data.splits import make_splits

    path = tmp_path / "splits.json"
    make_splits(cohort.cohort(), "holdout", val=0.25, test=0.25, seed=2).to_json(path)
    run = train_gan(cohort, tmp_path / "s", tiny_gan("epochs=1", "samples=0"), splits=path)
    fold = json.loads(path.read_text())["folds"][0]
    seen = json.loads((run / "subjects.json").read_text())["seen"]
    assert sorted(seen) == sorted(fold["train"])
    assert not set(seen) & (set(fold["val"]) | set(fold["test"]))
    assert (run / "splits.json").read_text() == path.read_text()
