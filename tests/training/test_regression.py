"""The regression LightningModule: fits, losses, optimisers."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from brainage.data.datasets import ScanDataset
from brainage.errors import BrainAgeError
from brainage.losses.registry import build_loss
from brainage.models import create_model
from brainage.models.base import forward_batch
from brainage.training.datamodule import BrainAgeDataModule
from brainage.training.module import RegressionTask
from brainage.training.optim import build_optimizer

OPTIM = {"name": "adam", "lr": 3e-3, "weight_decay": 0.0, "amsgrad": True, "momentum": 0.0}
PLATEAU = {"name": "plateau", "factor": 0.5, "patience": 5, "step_size": 10, "gamma": 0.9}


def _dataset(n: int = 12, seed: int = 0) -> ScanDataset:
    rng = np.random.default_rng(seed)
    ages = rng.uniform(20, 80, n)
    images = [np.full((20, 24, 18), (a - 50) / 30, np.float16)
              + rng.normal(0, 0.05, (20, 24, 18)).astype(np.float16) for a in ages]
    return ScanDataset(images, age=ages, sex=["F", "M"] * (n // 2))


class _Losses(L.Callback):
    def __init__(self) -> None:
        self.epochs: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.epochs.append(float(trainer.callback_metrics["train_loss_epoch"]))


def test_task_fits_a_tiny_problem():
    L.seed_everything(0, verbose=False)
    task = RegressionTask({"name": "scaledense", "kwargs": {"width": 2, "num_blocks": 2,
                                                            "output_relu": False}},
                          {"name": "l1"}, {**OPTIM, "lr": 3e-2}, PLATEAU)
    losses = _Losses()
    trainer = L.Trainer(max_epochs=6, accelerator="cpu", logger=False, callbacks=[losses],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    data = BrainAgeDataModule(_dataset(), _dataset(6, seed=1), batch_size=4)
    trainer.fit(task, datamodule=data)
    assert losses.epochs[-1] < 0.5 * losses.epochs[0]
    assert "val_mae" in trainer.callback_metrics and "lr-Adam" not in trainer.callback_metrics


@pytest.mark.parametrize(("loss", "model", "kwargs"), [
    ({"name": "tsan", "kwargs": {"lam": 10.0, "beta": 1.0}}, "scaledense",
     {"width": 2, "num_blocks": 2, "output_relu": False}),
    ({"name": "soft_label", "kwargs": {"sigma": 1.0}}, "sfcn", {"channels": [4, 8, 4]}),
])
def test_tsan_and_soft_label_losses_train(loss, model, kwargs):
    """One training step through Lightning: a finite loss whose gradient reaches every
    parameter (checked right after the backward pass, as Lightning runs it)."""
    task = RegressionTask({"name": model, "kwargs": kwargs}, loss, OPTIM, PLATEAU)
    seen: dict[str, list[str]] = {}

    class Gradients(L.Callback):
        def on_after_backward(self, trainer, module):
            named = [(n, p) for n, p in module.model.named_parameters() if p.requires_grad]
            seen["all"] = [n for n, _ in named]
            seen["missing"] = [n for n, p in named if p.grad is None
                               or not torch.isfinite(p.grad).all()]

    trainer = L.Trainer(fast_dev_run=1, accelerator="cpu", logger=False, callbacks=[Gradients()],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    loader = torch.utils.data.DataLoader(_dataset(8), batch_size=8)
    trainer.fit(task, loader, loader)  # the plateau schedule reads val_mae
    assert torch.isfinite(trainer.callback_metrics["train_loss"])
    assert len(seen["all"]) > 10 and seen["missing"] == []


def test_loss_errors_are_clear():
    sd = create_model("scaledense", width=2, num_blocks=2)
    with pytest.raises(BrainAgeError, match="Did you mean 'mse'"):
        build_loss("mse2", sd.age_bins)
    with pytest.raises(BrainAgeError, match="distribution over age bins"):
        build_loss("soft_label", sd.age_bins, "scaledense")
    with pytest.raises(BrainAgeError, match="loss 'tsan'.*did you mean 'lam'"):
        build_loss("tsan", sd.age_bins, lamda=3)
    with pytest.raises(BrainAgeError, match="takes none"):
        build_loss("mse", sd.age_bins, beta=1)


def test_forward_batch_passes_declared_covariates_only():
    model = create_model("scaledense", width=2, num_blocks=2, use_sex=True).eval()
    batch = next(iter(torch.utils.data.DataLoader(_dataset(4), batch_size=4)))
    assert forward_batch(model, batch).shape == (4,)
    stage2 = create_model("tsan_stage2", width=2, num_blocks=2)
    with pytest.raises(BrainAgeError, match="--cascade"):
        forward_batch(stage2, batch)


def test_optimisers_follow_the_presets():
    params = [torch.nn.Parameter(torch.zeros(2))]
    adam = build_optimizer(params, {**OPTIM, "lr": 1e-3, "weight_decay": 5e-4})
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["amsgrad"]
    assert adam.defaults["weight_decay"] == 5e-4
    sgd = build_optimizer(params, {**OPTIM, "name": "sgd", "lr": 1e-5})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["lr"] == 1e-5


def test_bf16_autocast_trains_on_cpu():
    task = RegressionTask({"name": "sfcn", "kwargs": {"channels": [4, 8, 4]}},
                          {"name": "soft_label"}, OPTIM, {**PLATEAU, "name": "none"})
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", precision="bf16-mixed", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(task, datamodule=BrainAgeDataModule(_dataset(8), _dataset(4), batch_size=4))
    assert torch.isfinite(trainer.callback_metrics["val_mae"])
    assert next(task.model.parameters()).dtype == torch.float32  # weights stay fp32


class _LRs(L.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_cosine_schedule_and_channels_last_weights():
    task = RegressionTask({"name": "sfcn", "kwargs": {"channels": [4, 8, 4]}},
                          {"name": "soft_label"}, OPTIM, {**PLATEAU, "name": "cosine"},
                          channels_last=True)
    lrs = _LRs()
    trainer = L.Trainer(max_epochs=4, accelerator="cpu", logger=False, callbacks=[lrs],
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(task, datamodule=BrainAgeDataModule(_dataset(8), _dataset(4), batch_size=4))
    expected = [OPTIM["lr"] * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)]
    np.testing.assert_allclose(lrs.lrs, expected, rtol=1e-6)
    conv = task.model.features[1].conv.weight  # (8, 4, 3, 3, 3): the layouts differ
    assert conv.is_contiguous(memory_format=torch.channels_last_3d) and not conv.is_contiguous()


def test_ema_weights_average_the_steps_and_are_saved(tmp_path):
    from brainage.training.module import ema_update
    from brainage.training.trainer import best_weights

    a, b = create_model("sfcn", channels=[4, 8, 4]), create_model("sfcn", channels=[4, 8, 4])
    before = {k: v.clone() for k, v in a.state_dict().items()}
    ema_update(a, b, 0.75)
    for k, v in a.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(v, 0.75 * before[k] + 0.25 * b.state_dict()[k])
        else:
            assert torch.equal(v, b.state_dict()[k])
    task = RegressionTask({"name": "sfcn", "kwargs": {"channels": [4, 8, 4]}},
                          {"name": "soft_label"}, OPTIM, {**PLATEAU, "name": "none"}, ema=0.9)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, default_root_dir=tmp_path)
    trainer.fit(task, datamodule=BrainAgeDataModule(_dataset(8), _dataset(4), batch_size=4))
    assert not any(p.requires_grad for p in task.ema_model.parameters())
    trained, averaged = task.model.state_dict(), task.ema_model.state_dict()
    assert not torch.equal(trained["classifier.weight"], averaged["classifier.weight"])
    ckpt = trainer.save_checkpoint(tmp_path / "x.ckpt") or tmp_path / "x.ckpt"
    saved = best_weights(ckpt)
    assert torch.equal(saved["classifier.weight"], averaged["classifier.weight"])
    with pytest.raises(BrainAgeError, match="ema=1.5"):
        RegressionTask({"name": "sfcn"}, {"name": "soft_label"}, OPTIM, PLATEAU, ema=1.5)


def test_compile_option_compiles_the_parts_in_place_and_keeps_parameter_names(monkeypatch):
    from brainage.training.module import RegressionTask

    kwargs = dict(model={"name": "sfcn", "kwargs": {"channels": [4, 8, 4]}},
                  loss={"name": "soft_label", "kwargs": {}},
                  optim={"name": "adam", "lr": 1e-3, "weight_decay": 0.0, "amsgrad": False},
                  scheduler={"name": "none"})
    task = RegressionTask(**kwargs, compile=True)
    names = list(task.state_dict())
    task.setup("fit")  # the real in-place compile (lazy: nothing is traced yet)
    assert list(task.state_dict()) == names  # checkpoints unchanged

    compiled: list[torch.nn.Module] = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **k: compiled.append(self))
    task = RegressionTask(**kwargs, compile=True)
    task.setup("fit")
    parts = {id(m) for m in compiled}
    assert id(task.model.features) in parts and id(task.model.classifier) in parts
    assert id(task.model.input_stage) not in parts  # no parameters: left alone
    assert id(task.model) not in parts  # the parts, so forward_outputs uses them too
    compiled.clear()
    RegressionTask(**kwargs).setup("fit")
    assert compiled == []  # off by default
