"""TGB-GAN as a LightningModule with manual optimisation (Li et al., MIUA 2021).

Per batch ``x`` with ages ``a`` (``G`` generator, ``D`` critic, ``R`` task branch)::

    critic:     mean D(G(x)) - mean D(x) + lambda * GP          (G(x) detached)
    generator:  -w_adv * mean D(G(x)) + alpha * |G(x) - x| + beta * MSE(R(G(x)), a)

One critic step per generator step: the critic's gradients are computed first; the
generator's then flow through a critic whose weights are frozen (no gradient reaches D from
the generator loss). Gradients are summed over ``accumulate`` batches (each scaled by one
over the window's size) before each pair of optimiser steps; a window never crosses an
epoch, so a resumed run (from the epoch's ``last.ckpt``) continues exactly. With
``accumulate = 1`` the critic is stepped before the generator loss is computed (the usual
WGAN-GP alternation); inside a longer window the generator sees the critic of the window's
start. ``beta = 0`` never runs R; ``adversarial = 0`` never builds or steps D (a plain
autoencoder). Validation logs ``val_l1``, the held-out reconstruction error the best
checkpoint is chosen by, and (beta > 0) ``val_task_mae``, R's error on reconstructions.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanMetric

from brainage.config import to_dict
from brainage.losses.adversarial import critic_loss, generator_loss
from brainage.models import check_kind, create_model
from brainage.training.gan_config import GanConfig
from brainage.training.optim import build_optimizer, build_schedule

#: Metric the best GAN checkpoint minimises.
MONITOR = "val_l1"


def _build(spec: dict[str, Any], kind: str) -> nn.Module:
    check_kind(spec["name"], kind)
    return create_model(spec["name"], **spec.get("kwargs", {}))


def _start_head_at(model: nn.Module, value: float) -> None:
    """Set the bias of a linear head (``model.head.fc``) to `value`, when it has one."""
    fc = getattr(getattr(model, "head", None), "fc", None)
    if isinstance(fc, nn.Linear) and fc.bias is not None and fc.bias.device.type != "meta":
        with torch.no_grad():
            fc.bias.fill_(value)


def _no_critic(x: Tensor) -> Tensor:
    return x.new_zeros(x.shape[0])  # (B, C, D, H, W) -> (B,)


class GanTask(L.LightningModule):
    """Train a TGB-GAN generator (with critic and task branch) on prepared volumes.

    Args:
        generator, critic, regressor: ``{"name", "kwargs"}`` of registry networks of kind
            ``generator``, ``critic`` and ``age``.
        objective: Fields of :class:`~brainage.training.gan_config.GanObjective`.
        optim: Optimiser of the generator and R; ``critic_optim`` that of the critic.
        scheduler: Schedule of both (stepped once per epoch).
        accumulate: Batches per optimiser step.
        seed: Seed of the penalty's interpolation weights (CPU).
        mean_age: R's output bias starts here (the training subjects' mean age), so the
            task term starts near the age variance instead of ``mean(age^2)``, which at
            beta = 0.1 would outweigh the L1 term a hundredfold in the first epochs.
    """

    def __init__(self, generator: dict[str, Any], critic: dict[str, Any],
                 regressor: dict[str, Any], objective: dict[str, Any], optim: dict[str, Any],
                 critic_optim: dict[str, Any], scheduler: dict[str, Any], accumulate: int = 1,
                 seed: int = 0, mean_age: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = _build(generator, "generator")
        self.critic = _build(critic, "critic") if objective["adversarial"] > 0 else None
        self.regressor = _build(regressor, "age") if objective["beta"] > 0 else None
        if self.regressor is not None:
            _start_head_at(self.regressor, float(mean_age))
        self.rng = torch.Generator().manual_seed(int(seed))
        self.val_l1 = MeanMetric()
        self.val_task_mae = MeanAbsoluteError()

    @classmethod
    def from_config(cls, config: GanConfig, mean_age: float = 50.0) -> GanTask:
        """The module for `config` (plain-dict hyper-parameters: checkpoints load with
        ``weights_only=True``)."""
        return cls(to_dict(config.generator), to_dict(config.critic), to_dict(config.regressor),
                   to_dict(config.objective), to_dict(config.optim),
                   to_dict(config.critic_optim), to_dict(config.scheduler), config.accumulate,
                   config.seed, mean_age)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction ``G(x)`` ``(B, 1, D, H, W)``."""
        return self.generator(x)

    def _window(self, batch_idx: int) -> tuple[float, bool]:
        """(loss scale, whether this batch ends an accumulation window)."""
        acc = int(self.hparams["accumulate"])
        n = int(self.trainer.num_training_batches)
        start = (batch_idx // acc) * acc
        size = min(acc, n - start)
        return 1.0 / size, batch_idx + 1 == start + size

    def _critic_step(self, x: Tensor, fake: Tensor, scale: float, step: bool) -> None:
        o = self.hparams["objective"]
        opt = self.optimizers()[1]  # type: ignore[index]
        rng = self.rng if x.device.type == "cpu" else None
        parts = critic_loss(self.critic, x, fake, o["gp_weight"], rng, o["penalty"])
        self.manual_backward(parts.total * scale)
        if step:
            opt.step()
            opt.zero_grad()
        n = len(x)
        self.log("train_critic_loss", parts.total.detach(), on_epoch=True, batch_size=n)
        self.log("train_wasserstein", -parts.wasserstein.detach(), on_epoch=True, batch_size=n)
        self.log("train_gp", parts.gradient_penalty.detach(), on_epoch=True, batch_size=n)

    def _generator_step(self, x: Tensor, age: Tensor, fake: Tensor, scale: float,
                        step: bool) -> None:
        o = self.hparams["objective"]
        opts = self.optimizers()
        opt = opts[0] if isinstance(opts, list) else opts
        critic = self.critic if self.critic is not None else _no_critic
        if self.critic is not None:
            self.critic.requires_grad_(False)  # the generator loss must not reach D
        try:
            parts = generator_loss(critic, fake, x, age, self.regressor, o["alpha"], o["beta"])
        finally:
            if self.critic is not None:
                self.critic.requires_grad_(True)
        total = (o["adversarial"] * parts.adversarial + o["alpha"] * parts.reconstruction
                 + o["beta"] * parts.task)
        self.manual_backward(total * scale)
        if step:
            opt.step()
            opt.zero_grad()
        n = len(x)
        self.log("train_loss", total.detach(), on_epoch=True, prog_bar=True, batch_size=n)
        self.log("train_l1", parts.reconstruction.detach(), on_epoch=True, batch_size=n)
        self.log("train_adversarial", parts.adversarial.detach(), on_epoch=True, batch_size=n)
        if parts.age_pred is not None:
            self.log("train_task_mse", parts.task.detach(), on_epoch=True, batch_size=n)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x, age = batch["image"], batch["age"].float()
        scale, step = self._window(batch_idx)
        fake = self.generator(x)  # (B, 1, D, H, W)
        if self.critic is not None:
            self._critic_step(x, fake, scale, step)
        self._generator_step(x, age, fake, scale, step)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x = batch["image"]
        fake = self.generator(x)
        l1 = (fake - x).abs().flatten(1).mean(1)  # (B,)
        self.val_l1.update(l1)
        self.log(MONITOR, self.val_l1, on_epoch=True, prog_bar=True, batch_size=len(x))
        if self.regressor is not None:
            self.val_task_mae(self.regressor(fake).float(), batch["age"].float())
            self.log("val_task_mae", self.val_task_mae, on_epoch=True, batch_size=len(x))

    def on_train_epoch_end(self) -> None:
        """Step the learning-rate schedules once per epoch."""
        scheds = self.lr_schedulers()
        for sched in scheds if isinstance(scheds, list) else [scheds] if scheds else []:
            sched.step()

    def configure_optimizers(self) -> Any:
        return self.build_optimizers(int(self.trainer.max_epochs or 1))

    def build_optimizers(self, epochs: int) -> Any:
        """Optimisers (generator + R, then critic) and their per-epoch schedules."""
        hp = self.hparams
        params = list(self.generator.parameters())
        if self.regressor is not None:
            params += list(self.regressor.parameters())
        opts = [build_optimizer(params, hp["optim"])]
        if self.critic is not None:
            opts.append(build_optimizer(self.critic.parameters(), hp["critic_optim"]))
        scheds = [build_schedule(o, hp["scheduler"], epochs, MONITOR) for o in opts]
        if any(s is o for s, o in zip(scheds, opts, strict=True)):  # "none": no schedule
            return opts
        return opts, [s["lr_scheduler"]["scheduler"] for s in scheds]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the random states so a resumed run continues exactly."""
        checkpoint["brainage_rng"] = {"torch": torch.get_rng_state(), "gp": self.rng.get_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random states saved by :meth:`on_save_checkpoint`."""
        state = checkpoint.get("brainage_rng") or {}
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "gp" in state:
            self.rng.set_state(state["gp"])
