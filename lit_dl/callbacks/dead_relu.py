"""Dead-ReLU monitor: the fraction of ReLU units that never fire over a validation epoch."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from lit_dl.callbacks._logging import log_scalars
from lit_dl.errors import ConfigError
from lit_dl.nn.init import activation_feature_dims
from lit_dl.nn.layers import can_die

__all__ = ["DeadReLUMonitor"]


class DeadReLUMonitor(L.Callback):
    """Per ReLU layer, the fraction of units whose output is zero for every validation sample.

    A unit is a feature of a Linear output (the last dimension, so a ``(B, T, D)`` sequence has
    ``D`` units, each reduced over batch and positions) or a channel of a Conv output (dimension 1);
    which layer feeds each ReLU is read from the module tree (:mod:`lit_dl.nn.layers`), and a ReLU
    fed by nothing known counts dimension 1. A ReLU unit
    whose input is negative for every sample gets no gradient and never recovers (the "dying ReLU"
    of a too-large learning rate or a large negative bias; Lu et al., 2019, "Dying ReLU and
    Initialization"). Every ``nn.ReLU``/``nn.ReLU6`` module (and every registered activation that
    can die) is watched. A module called at several places of one forward pass is measured per
    call: the first call is logged under its name, the ``k``-th after it as ``<name>#k``.

    Forward hooks are attached at the start of each validation epoch (not the sanity check) and
    removed at its end; they keep one boolean per unit ("fired yet"), never the activations. Ranks
    combine their flags, so a unit counts as alive if it fired anywhere.

    Logged at the epoch's global step: ``dead_relu/<module name>`` (fraction in ``[0, 1]``). A rank-zero
    warning names the layers above ``threshold``, once per layer.

    Args:
        threshold: Dead fraction above which a layer is reported in a warning, in ``[0, 1]``.
        every_n_epochs: Measure every this many validation epochs.
    """

    def __init__(self, threshold: float = 0.5, every_n_epochs: int = 1) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {threshold!r}")
        if every_n_epochs < 1:
            raise ConfigError(f"every_n_epochs must be >= 1, got {every_n_epochs!r}")
        self.threshold = float(threshold)
        self.every_n_epochs = every_n_epochs
        self.dead_fractions: dict[str, float] = {}
        self._fired: dict[str, Tensor] = {}
        self._handles: list[Any] = []
        self._calls: dict[str, int] = {}
        self._warned: set[str] = set()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs != 0:
            return
        self._remove_hooks()
        self._fired = {}
        feature_dims = activation_feature_dims(pl_module)
        for name, module in pl_module.named_modules():
            if can_die(module):
                hook = self._hook(name, feature_dims.get(module, 1))
                self._handles.append(module.register_forward_hook(hook))

    def on_validation_batch_start(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self._calls = {}

    def _hook(self, name: str, feature_dim: int = 1) -> Any:
        def hook(module: nn.Module, args: Any, output: Tensor) -> None:
            call = self._calls.get(name, 0)
            self._calls[name] = call + 1
            key = name if call == 0 else f"{name}#{call}"
            keep = feature_dim % output.ndim if output.ndim > 1 else 0
            dims = [d for d in range(output.ndim) if d != keep]
            fired = (output.detach() > 0).any(dim=dims) if dims else output.detach() > 0
            previous = self._fired.get(key)
            self._fired[key] = fired if previous is None else previous | fired

        return hook

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._handles:
            return
        self._remove_hooks()
        fractions: dict[str, float] = {}
        for name, fired in self._fired.items():
            # Sum of 0/1 flags over ranks: > 0 means the unit fired on some rank.
            fired_any = trainer.strategy.reduce(fired.float(), reduce_op="sum") > 0
            fractions[name] = 1.0 - fired_any.float().mean().item()
        self._fired = {}
        self.dead_fractions = fractions
        log_scalars(trainer, {f"dead_relu/{name}": frac for name, frac in fractions.items()})
        newly = {n: f for n, f in fractions.items() if f > self.threshold and n not in self._warned}
        if newly:
            self._warned.update(newly)
            listed = ", ".join(f"{n}: {f:.0%}" for n, f in newly.items())
            rank_zero_warn(
                f"DeadReLUMonitor: more than {self.threshold:.0%} of the units never fired over the "
                f"validation epoch in {listed}; consider a lower learning rate, He init or LeakyReLU"
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._remove_hooks()
        self._fired = {}

    def _remove_hooks(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
