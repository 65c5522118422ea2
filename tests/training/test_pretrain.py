"""Contrastive pretraining: the task, its views, the encoder run folder, determinism, resume."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from safetensors.torch import load_file
from synthetic_runs import make_prepared, tiny_config

from brainage import runs as rf
from brainage.data.datasets import ScanDataset
from brainage.errors import BrainAgeError
from brainage.models import create_model, load_model
from brainage.models.projection import load_projection
from brainage.training import pretrain as pretrain_mod
from brainage.training.checks import check_config
from brainage.training.config import ContrastiveSpec, LossSpec, SplitSpec, load_train_config
from brainage.training.contrastive import ContrastiveTask, MultiViewDataset, contrastive_data
from brainage.training.fit import train_cohort
from brainage.training.pretrain import pretrain_cohort


def contrastive_config(**overrides: object):
    """A seconds-long pretraining config: tiny SFCN encoder, 8-d projection, 2 epochs."""
    base = dict(loss=LossSpec("contrastive", {"method": "exp", "sigma": 5.0}),
                contrastive=ContrastiveSpec(views=2, augment="none", projection=[16, 8]),
                split=SplitSpec("holdout", val=0.0, test=0.25), epochs=2)
    return tiny_config(**{**base, **overrides})


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return make_prepared(tmp_path_factory.mktemp("prep"), n=16)


@pytest.fixture(scope="module")
def run(cohort, tmp_path_factory):
    return pretrain_cohort(cohort, tmp_path_factory.mktemp("runs") / "enc", contrastive_config())


def _task(config):
    return ContrastiveTask.from_config(config, "train_loss")


def test_encoder_run_folder(run, cohort):
    for name in ("weights.safetensors", "model.json", "projection.safetensors",
                 "projection.json", "config.yaml", "preprocessing_spec.json", "splits.json",
                 "model_card.json", "run.json", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    assert not (run / "predictions.tsv").exists()  # no age until probed
    info = rf.read_run_info(run)
    assert (info.kind, info.members, info.spec_hash) == ("encoder", ["."], cohort.spec.hash)
    assert info.extra["representation"] == "projection" and info.extra["representation_dim"] == 8
    assert load_train_config(run / "config.yaml") == contrastive_config()
    head, encoder = load_projection(run), load_model(run)
    assert (head.in_features, head.widths) == (encoder.num_features, [16, 8])
    card = json.loads((run / "model_card.json").read_text())
    assert card["model"]["kind"] == "encoder" and "brainage probe" in card["intended_use"]


def test_only_training_subjects_are_pretrained_on(run, cohort):
    from brainage.data.splits_file import Splits

    splits = Splits.from_json(run / "splits.json")
    data = contrastive_data(contrastive_config(), cohort.table, splits, 0)
    assert len(data.train_set) == len(splits.subjects("train")) == 12
    assert data.val_set is None


def test_identical_views_equal_encoding_each_view():
    torch.manual_seed(0)
    task = _task(contrastive_config()).train()
    x = torch.randn(4, 1, 20, 24, 18)
    age = torch.tensor([20.0, 30.0, 50.0, 70.0])
    grads = []
    for images in (x, torch.stack([x, x], dim=1)):  # (B, C, ...) once, or (B, V, C, ...)
        task.zero_grad()
        loss = task.criterion({"projection": task.project(images)}, age)
        loss.backward()
        grads.append([p.grad.clone() for p in task.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_augmented_views_differ_and_are_staged(cohort):
    base = ScanDataset.from_table(cohort.table)
    views = MultiViewDataset(base, "crop+flip", views=3)
    torch.manual_seed(0)
    image = views[0]["image"]
    assert image.shape == (3, 1, 20, 24, 18) and not torch.equal(image[0], image[1])
    stage = create_model("sfcn", channels=[4, 8, 4], input_pool=2, input_bins=3).input_stage
    views.set_stage(stage)
    assert views[0]["image"].shape == (3, 3, 10, 12, 9)
    same = MultiViewDataset(base, "none", views=2)
    assert same[0]["image"].shape == (1, 20, 24, 18) and same.staged_bytes(stage) > 0


def test_pretraining_lowers_the_loss():
    torch.manual_seed(0)
    task = _task(contrastive_config())
    opt = torch.optim.Adam(task.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(1)
    age = torch.linspace(20, 80, 8)
    x = torch.randn(8, 1, 20, 24, 18, generator=gen) + age.view(-1, 1, 1, 1, 1) / 30
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = task.criterion({"projection": task.project(x)}, age)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_same_seed_gives_identical_encoders(run, cohort, tmp_path):
    other = pretrain_cohort(cohort, tmp_path / "b", contrastive_config())
    for name in ("weights.safetensors", "projection.safetensors"):
        a, b = load_file(str(run / name)), load_file(str(other / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class _Interrupt(L.Callback):
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


def test_resume_after_interruption_matches_uninterrupted(run, cohort, tmp_path, monkeypatch):
    original = pretrain_mod.fit_checkpoint
    monkeypatch.setattr(pretrain_mod, "fit_checkpoint",
                        lambda *a, **k: original(*a, **{**k, "callbacks": [_Interrupt()]}))
    config = contrastive_config(contrastive=ContrastiveSpec(views=2, augment="crop",
                                                            projection=[16, 8]))
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        pretrain_cohort(cohort, tmp_path / "c", config)
    assert (tmp_path / "c/checkpoints/last.ckpt").exists()
    assert not (tmp_path / "c/run.json").exists()
    monkeypatch.setattr(pretrain_mod, "fit_checkpoint", original)
    resumed = pretrain_cohort(cohort, tmp_path / "c", config)
    straight = pretrain_cohort(cohort, tmp_path / "d", config)
    a, b = load_file(str(resumed / "weights.safetensors")), load_file(
        str(straight / "weights.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # augmentation draws resumed exactly too


def test_mismatched_loss_or_command_is_refused_before_anything_is_written(cohort, tmp_path):
    with pytest.raises(BrainAgeError, match="needs a loss on the projections"):
        pretrain_cohort(cohort, tmp_path / "a", contrastive_config(loss=LossSpec("l1")))
    with pytest.raises(BrainAgeError, match="brainage pretrain"):
        train_cohort(cohort, tmp_path / "b", contrastive_config())
    with pytest.raises(BrainAgeError, match="brainage pretrain"):
        train_cohort(cohort, tmp_path / "c", tiny_config(loss=LossSpec("contrastive")))
    with pytest.raises(BrainAgeError, match="contrastive' section"):
        pretrain_cohort(cohort, tmp_path / "d", tiny_config(loss=LossSpec("contrastive")))
    with pytest.raises(BrainAgeError, match="unknown view augmentation"):
        ContrastiveSpec(augment="crop+blur")
    assert not any((tmp_path / n).exists() for n in "abcd")


def test_presets_the_paper_and_the_cpu_one():
    paper = load_train_config("contrastive_paper")
    assert (paper.model.name, paper.model.kwargs) == ("resnet18_3d", {})
    assert paper.loss.kwargs == {"method": "exp", "kernel": "rbf", "sigma": 2.0,
                                 "temperature": 0.1}
    assert (paper.optim.name, paper.optim.lr, paper.optim.weight_decay) == ("adam", 1e-4, 5e-5)
    assert (paper.scheduler.name, paper.scheduler.step_size, paper.scheduler.gamma) == \
        ("step", 10, 0.9)
    assert (paper.epochs, paper.batch_size, paper.split.method) == (300, 32, "openbhb")
    assert paper.contrastive == ContrastiveSpec(views=2, augment="none", projection=[512, 128])
    check_config(paper, (121, 145, 121), ContrastiveTask)  # meta device: no memory used
    cpu = load_train_config("contrastive")
    assert cpu.model.kwargs["input_pool"] == 3 and cpu.contrastive.projection == [512, 128]
    check_config(cpu, (91, 109, 91), ContrastiveTask)


def test_only_the_encoder_is_trained_for_every_age_model():
    from brainage.models import list_models, model_info
    from brainage.training.contrastive import feature_parameters

    for name in list_models(kind="age"):
        kwargs = model_info(name).tiny
        names = {n for n, _ in create_model(name, **kwargs).named_parameters()}
        used = feature_parameters({"name": name, "kwargs": kwargs})
        assert used and used < names, name  # the head is left out, the encoder is not
        assert all(n.startswith(("head.", "classifier.")) for n in names - used), name
    task = _task(contrastive_config())
    frozen = {n for n, p in task.model.named_parameters() if not p.requires_grad}
    assert frozen == {"classifier.weight", "classifier.bias"}


def test_a_run_is_not_resumed_on_other_splits(run, cohort):
    from brainage.data.splits_file import Splits

    splits = Splits.from_json(run / "splits.json")
    fold = dict(splits.folds[0])
    fold["train"], fold["test"] = fold["train"][2:], fold["test"] + fold["train"][:2]
    with pytest.raises(BrainAgeError, match="trained on other splits"):
        pretrain_cohort(cohort, run, contrastive_config(), Splits("user", None, {}, [fold]))
    assert Splits.from_json(run / "splits.json").folds == splits.folds  # left as it was
