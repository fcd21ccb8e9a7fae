"""The task's learning rate in a running fit: ``lr_scaling`` with the batch size read from the
Trainer's data, the LR a tuner sets (``LearningRateFinder``), and what changed since the optimizer was built.

The scaling rules themselves are pure functions in :mod:`lit_dl.optim.lr_scaling`; this module finds
the numbers they need in a running fit (the per-device batch size, devices, nodes, accumulation) and
records what was done.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.fabric.loggers import Logger as FabricLogger
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_dl.errors import ConfigError
from lit_dl.optim import LRScaling, global_batch_size, lr_scale_factor, scale_optimizer_lr
from lit_dl.optim.checks import factory_class

__all__ = [
    "factory_lr",
    "per_device_batch_size",
    "scale_lr_to_batch",
    "set_base_lr",
    "trainer_global_batch_size",
    "tuned_changes",
]


def per_device_batch_size(module: L.LightningModule, lr_scaling: LRScaling) -> int:
    """Training samples per device and step: the datamodule's ``batch_size``, else the train loader's.

    Raises:
        ConfigError: neither says its batch size (the message names ``lr_scaling``, which needs it).
    """
    trainer = module.trainer
    datamodule = getattr(trainer, "datamodule", None)
    size = getattr(datamodule, "batch_size", None)
    if not isinstance(size, int):
        loader = trainer.train_dataloader
        if loader is None and (datamodule is not None or is_overridden("train_dataloader", module)):
            # Not set up yet: the data source's public hook builds one (the fit loop's own
            # set-up must wait until a checkpoint's loader state can be restored).
            loader = (datamodule or module).train_dataloader()
        size = getattr(loader, "batch_size", None)
    if not isinstance(size, int) or isinstance(size, bool):
        raise ConfigError(
            f"lr_scaling={lr_scaling!r} needs the per-device batch size, but neither the datamodule "
            f"({type(datamodule).__name__}) nor the train dataloader has an integer batch_size"
        )
    return size


def trainer_global_batch_size(trainer: L.Trainer, per_device: int) -> int:
    """Samples behind one optimizer step: ``per_device`` * devices * nodes * accumulation."""
    return global_batch_size(
        per_device, trainer.num_devices, trainer.num_nodes, trainer.accumulate_grad_batches
    )


def scale_lr_to_batch(
    optimizer: torch.optim.Optimizer,
    lr_scaling: LRScaling,
    batch: int,
    base_batch_size: int,
    loggers: Sequence[Logger] | Sequence[FabricLogger],
) -> None:
    """Scale every group's LR by ``lr_scaling`` for the global ``batch``, print it once and record it
    with the run's hyperparameters.

    The record goes to the loggers (``hparams.yaml``), not to the module's ``hparams``: checkpoints
    pass those back to ``__init__`` in ``load_from_checkpoint``.
    """
    factor = lr_scale_factor(lr_scaling, batch, base_batch_size)
    changes = scale_optimizer_lr(optimizer, factor)
    old = ", ".join(dict.fromkeys(f"{o:g}" for o, _ in changes))  # one value per distinct LR
    new = ", ".join(dict.fromkeys(f"{n:g}" for _, n in changes))
    rank_zero_info(
        f"lr scaled {lr_scaling} x{round(factor, 4)!r} (global batch {batch} / base {base_batch_size}): "
        f"{old} -> {new}"
    )
    names = [str(group.get("name", i)) for i, group in enumerate(optimizer.param_groups)]
    record = {
        "lr_scaled/global_batch_size": batch,
        "lr_scaled/factor": factor,
        **{f"lr_scaled/lr/{name}": lr for name, (_, lr) in zip(names, changes, strict=True)},
    }
    for logger in loggers:
        logger.log_hyperparams(record)


def factory_lr(factory: Any) -> float | None:
    """The ``lr`` an optimizer factory passes (a ``functools.partial``'s keyword, as the CLI builds it),
    else its class's default; ``None`` when neither says."""
    keywords = getattr(factory, "keywords", None)
    if isinstance(keywords, dict) and isinstance(keywords.get("lr"), (int, float)):
        return float(keywords["lr"])
    cls = factory_class(factory)
    parameter = inspect.signature(cls).parameters.get("lr") if cls is not None else None
    if parameter is not None and isinstance(parameter.default, (int, float)):
        return float(parameter.default)
    return None


def set_base_lr(optimizer: torch.optim.Optimizer, configured: float | None, lr: float) -> None:
    """Every group at ``lr``; a group whose LR differs from the ``configured`` one keeps its ratio to it."""
    for group in optimizer.param_groups:
        if configured is None or group["lr"] == configured:
            group["lr"] = lr
        else:
            group["lr"] = group["lr"] * lr / configured


def tuned_changes(
    built: tuple[float | None, int | None], now: tuple[float | None, int | None], configured_lr: float | None
) -> str:
    """What differs between the ``(lr, global batch)`` an optimizer was built from and ``now``, as
    ``"lr 0.001 -> 0.02, global batch 64 -> 128"``; ``""`` when nothing does. An ``lr`` of ``None``
    is the factory's own (``configured_lr``)."""
    (built_lr, built_batch), (lr, batch) = built, now
    changes = []
    if lr != built_lr:
        changes.append(f"lr {built_lr if built_lr is not None else configured_lr} -> {lr}")
    if batch != built_batch:
        changes.append(f"global batch {built_batch} -> {batch}")
    return ", ".join(changes)
