"""Callbacks for tests that watch a training process from outside (imported by class_path)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import lightning as L


class StallAtStep(L.Callback):
    """After optimizer step ``step`` (and after the callbacks before it) write ``marker`` and sleep, so
    that a test can kill the process there.

    Args:
        step: The ``trainer.global_step`` to stall at.
        marker: File written when the stall begins.
    """

    def __init__(self, step: int, marker: str) -> None:
        self.step = step
        self.marker = marker

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            Path(self.marker).write_text(f"epoch {trainer.current_epoch} batch {batch_idx}\n")
            time.sleep(600)


class FirstNonFiniteLoss(L.Callback):
    """Write to ``record`` the step index of the first non-finite training loss (host sync every step:
    a test's probe, not for real runs).

    Args:
        record: File that receives the step index.
    """

    def __init__(self, record: str) -> None:
        self.record = record

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if not math.isfinite(loss.item()) and not Path(self.record).exists():
            Path(self.record).write_text(str(trainer.global_step))


class StopAfterEpoch(L.Callback):
    """Stop the fit at the end of epoch ``epoch`` (0-based), as a preempted run would, without
    changing ``max_epochs`` (which the schedules follow).

    Args:
        epoch: The last epoch to train.
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True
