"""Activation-statistics monitor: mean and std of each block's pre-activation values."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from lit_dl.callbacks._logging import log_scalars
from lit_dl.errors import ConfigError
from lit_dl.nn.layers import is_activation

__all__ = ["ActivationStatsMonitor"]


class ActivationStatsMonitor(L.Callback):
    """Every ``every_n_steps`` training steps, the mean and std of what each activation module receives.

    The pre-activation distribution of a layer drifts as the layers below it learn ("internal
    covariate shift", Ioffe & Szegedy, 2015, Sec. 2): that drift is what BatchNorm exists to stop,
    and a std running to zero or a mean far from zero is how saturating tanh/sigmoid units and dead
    ReLUs begin. One block = one activation module (every activation :mod:`lit_dl.nn.layers` knows,
    registered ones included), named by its module path; a module called at several places of one
    forward pass is measured per call (the ``k``-th call after the first as ``<name>#k``). The mean
    and std are over every entry of the input (all units and positions together).

    Forward pre-hooks are attached only for a measured batch and removed at its end; each keeps two
    scalars per block, never the activations, and the values reach the host in one copy per step.

    Logged at the step: ``act_stats/<module name>/mean`` and ``act_stats/<module name>/std``. The
    latest values stay readable in ``stats`` (name → ``(mean, std)``).

    Args:
        every_n_steps: Measure the training batch at every global step divisible by this.
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.stats: dict[str, tuple[float, float]] = {}
        self._pending: dict[str, Tensor] = {}
        self._handles: list[Any] = []
        self._calls: dict[str, int] = {}
        self._step = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.global_step % self.every_n_steps != 0:
            return
        self._remove_hooks()
        self._step = trainer.global_step
        self._calls = {}
        for name, module in pl_module.named_modules():
            if is_activation(module):
                self._handles.append(module.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            x = args[0].detach()
            std, mean = torch.std_mean(x.float())
            self._pending[name if call == 0 else f"{name}#{call}"] = torch.stack([mean, std])

        return hook

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if not self._handles:
            return
        self._remove_hooks()
        if not self._pending:
            return
        names = list(self._pending)
        values = torch.stack([self._pending[n] for n in names]).cpu().tolist()
        self._pending = {}
        self.stats = {n: (m, s) for n, (m, s) in zip(names, values, strict=True)}
        metrics: dict[str, float] = {}
        for n, (m, s) in self.stats.items():
            metrics[f"act_stats/{n}/mean"] = m
            metrics[f"act_stats/{n}/std"] = s
        log_scalars(trainer, metrics, step=self._step)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._remove_hooks()
        self._pending = {}

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
