"""Writing monitor results to the trainer's loggers (internal)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_warn


def log_scalars(trainer: L.Trainer, metrics: dict[str, float], step: int | None = None) -> None:
    """Write ``metrics`` at ``step`` (default: the current global step) to every logger.

    Loggers write on rank 0 only.

    Straight to the loggers rather than through ``LightningModule.log``: a monitor's own frequency
    then decides what is written, not ``log_every_n_steps``.
    """
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=trainer.global_step if step is None else step)


def tensorboard_writer(trainer: L.Trainer) -> Any | None:
    """The ``SummaryWriter`` of the first TensorBoard logger, or ``None`` (no logger, another kind)."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


_warned: set[str] = set()


def warn_once(message: str) -> None:
    """A rank-zero warning shown once per process (e.g. "matplotlib is missing")."""
    if message not in _warned:
        _warned.add(message)
        rank_zero_warn(message)
