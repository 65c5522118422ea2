"""Age regression as a LightningModule: any registered model, loss and optimiser from config.

The module holds only plain-dict hyper-parameters, so its Lightning checkpoints load with
``weights_only=True`` (resume); published weights are written as safetensors elsewhere.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError

from brainage.errors import InputError
from brainage.losses.registry import build_loss
from brainage.models import create_model
from brainage.models.base import BrainAgeModel, batch_covariates, forward_batch
from brainage.training.optim import build_optimizer, build_schedule


class RegressionTask(L.LightningModule):
    """Train a registry model to predict age.

    Args:
        model: ``{"name": ..., "kwargs": {...}}`` for :func:`brainage.models.create_model`.
        loss: ``{"name": ..., "kwargs": {...}}`` for :func:`brainage.losses.build_loss`.
        optim: Fields of :class:`brainage.training.network_config.OptimSpec`.
        scheduler: Fields of :class:`brainage.training.network_config.SchedulerSpec`.
        monitor: Metric the plateau scheduler follows (``val_mae``; ``train_mae`` when
            there is no validation set).
        channels_last: Keep the network's weights in the ``channels_last_3d`` memory format
            (1.15-1.55x faster 3D convolutions on CPU, measured; same results up to rounding).
        ema: Decay of an exponential moving average of the weights (and norm statistics)
            updated after every optimiser step; 0 = off. When on, validation, the best
            checkpoint and the saved model use the averaged weights, which are much less
            noisy than the last step's on small cohorts.
        compile: Compile the network's parts in place (:func:`compile_network`; parameter
            names and checkpoints are unchanged).

    Attributes:
        metric: The logged metric whose ``val_``/``train_`` value picks the best epoch.
        provides: Model outputs this task gives its loss (the loss's ``needs``).
    """

    metric = "mae"
    provides: tuple[str, ...] = ("age", "log_probs")

    def __init__(self, model: dict[str, Any], loss: dict[str, Any], optim: dict[str, Any],
                 scheduler: dict[str, Any], monitor: str = "val_mae",
                 channels_last: bool = False, ema: float = 0.0, compile: bool = False
                 ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = create_model(model["name"], **model.get("kwargs", {}))
        if not 0.0 <= ema < 1.0:
            raise InputError(f"ema={ema!r}: expected a decay in [0, 1) (0 = off), e.g. 0.99.")
        self.ema_model = _frozen_copy(self.model) if ema > 0 else None
        self.criterion = build_loss(loss["name"], self.model.age_bins, model["name"],
                                    **loss.get("kwargs", {}))
        self._check_loss()
        self.train_mae = MeanAbsoluteError()
        self.val_mae = MeanAbsoluteError()
        #: The data yield images already through the model's input stage (set by
        #: ``fit_member`` when the DataModule caches them); not a hyper-parameter.
        self.inputs_staged = False

    @classmethod
    def from_config(cls, config: Any, monitor: str) -> RegressionTask:
        """The task of a :class:`~brainage.training.config.TrainConfig`."""
        from brainage.config import to_dict

        if getattr(config, "contrastive", None) is not None:
            raise InputError("this config has a 'contrastive' section: it pretrains an "
                             "encoder. Fix: `brainage pretrain PREPARED RUN -c ...`, or set "
                             "contrastive: null for supervised training.")
        return cls(model=to_dict(config.model), loss=to_dict(config.loss),
                   optim=to_dict(config.optim), scheduler=to_dict(config.scheduler),
                   monitor=monitor, channels_last=config.channels_last, ema=config.ema,
                   compile=config.compile)

    def _check_loss(self) -> None:
        if self.criterion.needs not in self.provides:
            raise InputError(
                f"loss {self.criterion.name!r} reads the model output "
                f"{self.criterion.needs!r}: it pretrains an encoder, which `brainage train` "
                "does not do. Fix: `brainage pretrain PREPARED RUN -c contrastive`, or a "
                "regression loss (l1, mse, tsan, soft_label).")

    def example_outputs(self, x: Tensor) -> dict[str, Tensor]:
        """The loss's inputs for images `x` (zero covariates); checks run it on meta."""
        cov = {name: torch.zeros(len(x)) for name in self.model.covariates}
        return self.model.forward_outputs(x, **cov)

    def setup(self, stage: str) -> None:
        """Switch the weights to ``channels_last_3d`` (before the optimiser is built) and
        compile the network if asked."""
        if self.hparams.get("channels_last"):
            for net in (self.model, self.ema_model):
                if net is not None:
                    net.to(memory_format=torch.channels_last_3d)
        if self.hparams.get("compile") and stage == "fit":
            compile_network(self.model)

    @property
    def net(self) -> BrainAgeModel:
        """The network in use: the weight average in evaluation when ``ema`` is on."""
        return self.ema_model if self.ema_model is not None and not self.training else self.model

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Update the weight average after the optimiser step."""
        if self.ema_model is not None:
            ema_update(self.ema_model, self.model, float(self.hparams["ema"]))

    def input_mode(self) -> AbstractContextManager[None]:
        """The context the network runs in: staged inputs when the data are staged."""
        return self.net.staged_inputs() if self.inputs_staged else nullcontext()

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Predicted age ``(B,)``."""
        with self.input_mode():
            return forward_batch(self.net, batch)

    def _step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Loss and predicted age ``(B,)`` (float32) of a batch."""
        net = self.net
        with self.input_mode():
            outputs = net.forward_outputs(batch["image"], **batch_covariates(net, batch))
        return self.criterion(outputs, batch["age"]), outputs["age"].float()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, pred = self._step(batch)
        n = len(pred)
        self.train_mae(pred.detach(), batch["age"].float())
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=True)
        self.log("train_mae", self.train_mae, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=n)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, pred = self._step(batch)
        self.val_mae(pred, batch["age"].float())
        self.log("val_loss", loss, on_epoch=True, batch_size=len(pred), sync_dist=True)
        self.log("val_mae", self.val_mae, on_epoch=True, prog_bar=True, batch_size=len(pred))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the random states so a resumed run continues exactly (dropout, pairs)."""
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
        gen = self.criterion.generator
        if gen is not None:
            state["loss"] = gen.get_state()
        checkpoint["brainage_rng"] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the random states saved by :meth:`on_save_checkpoint`."""
        state = checkpoint.get("brainage_rng") or {}
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(list(state["cuda"]))
        gen = self.criterion.generator
        if gen is not None and "loss" in state:
            gen.set_state(state["loss"])

    def configure_optimizers(self) -> Any:
        opt = build_optimizer([p for p in self.parameters() if p.requires_grad],
                              self.hparams["optim"])
        epochs = int(self.trainer.max_epochs or 1)
        return build_schedule(opt, self.hparams["scheduler"], epochs, self.hparams["monitor"])


def compile_network(model: nn.Module) -> None:
    """``torch.compile`` every direct part of `model` that has parameters, in place.

    The parts, not the model's ``forward``: training also calls other entry points (SFCN's
    ``forward_logits``), and in-place compilation keeps parameter names, so checkpoints and
    saved weights are those of the plain model.
    """
    for part in model.children():
        if any(True for _ in part.parameters()):
            part.compile()


def _frozen_copy(model: nn.Module) -> Any:
    import copy

    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin.eval()


@torch.no_grad()
def ema_update(average: nn.Module, model: nn.Module, decay: float) -> None:
    """``average <- decay * average + (1 - decay) * model`` over parameters and float buffers
    (norm statistics); integer buffers (batch counters) are copied."""
    for a, m in zip(average.state_dict().values(), model.state_dict().values(), strict=True):
        if a.is_floating_point():
            a.lerp_(m, 1.0 - decay)
        else:
            a.copy_(m)
