"""Optimisers and learning-rate schedules a config can name, one registry each.

An optimiser builder takes the parameters and the ``optim`` section (a dict of
:class:`~brainage.training.network_config.OptimSpec` fields); a schedule builder takes the optimiser,
the ``scheduler`` section, the number of epochs and the monitored metric, and returns what
Lightning's ``configure_optimizers`` expects (or the bare optimiser for ``none``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from brainage.registry import Registry

OptimBuilder = Callable[[Iterable[torch.nn.Parameter], dict[str, Any]], torch.optim.Optimizer]
ScheduleBuilder = Callable[[torch.optim.Optimizer, dict[str, Any], int, str], Any]

OPTIMIZERS: Registry[OptimBuilder] = Registry("optimiser", "`optim.name`: adam, adamw or sgd")
SCHEDULERS: Registry[ScheduleBuilder] = Registry(
    "learning-rate schedule", "`scheduler.name`: plateau, step, cosine or none")


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[torch.nn.Parameter], o: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"],
                            amsgrad=o["amsgrad"])


@OPTIMIZERS.register("adamw")
def _adamw(params: Iterable[torch.nn.Parameter], o: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"],
                             amsgrad=o["amsgrad"])


@OPTIMIZERS.register("sgd")
def _sgd(params: Iterable[torch.nn.Parameter], o: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=o["lr"], weight_decay=o["weight_decay"],
                           momentum=o["momentum"])


def build_optimizer(params: Iterable[torch.nn.Parameter], optim: dict[str, Any]
                    ) -> torch.optim.Optimizer:
    """The optimiser named by ``optim["name"]`` over `params`."""
    return OPTIMIZERS.get(optim["name"])(params, optim)


@SCHEDULERS.register("none")
def _none(opt: torch.optim.Optimizer, s: dict[str, Any], epochs: int, monitor: str) -> Any:
    return opt


@SCHEDULERS.register("step")
def _step(opt: torch.optim.Optimizer, s: dict[str, Any], epochs: int, monitor: str) -> Any:
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=s["step_size"], gamma=s["gamma"])
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched}}


@SCHEDULERS.register("cosine")
def _cosine(opt: torch.optim.Optimizer, s: dict[str, Any], epochs: int, monitor: str) -> Any:
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(int(epochs), 1))
    return {"optimizer": opt, "lr_scheduler": {"scheduler": sched}}


@SCHEDULERS.register("plateau")
def _plateau(opt: torch.optim.Optimizer, s: dict[str, Any], epochs: int, monitor: str) -> Any:
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=s["factor"], patience=s["patience"])
    return {"optimizer": opt, "lr_scheduler": {
        "scheduler": sched, "monitor": monitor, "interval": "epoch"}}


def build_schedule(opt: torch.optim.Optimizer, scheduler: dict[str, Any], epochs: int,
                   monitor: str) -> Any:
    """``configure_optimizers``'s return value for the schedule ``scheduler["name"]``."""
    return SCHEDULERS.get(scheduler["name"])(opt, scheduler, epochs, monitor)
