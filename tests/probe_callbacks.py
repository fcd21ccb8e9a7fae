"""Callbacks for tests that watch a training process from outside (imported by class_path)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import BaseFinetuning


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
            # written whole, then renamed: a test that sees the marker may kill at once and read it
            partial = Path(f"{self.marker}.partial")
            partial.write_text(f"epoch {trainer.current_epoch} batch {batch_idx}\n")
            partial.replace(self.marker)
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


class RecordBatchSizes(L.Callback):
    """Append the size of every training batch the fit loop trains on to ``record``, one per line.

    Args:
        record: File that receives the sizes.
    """

    def __init__(self, record: str) -> None:
        self.record = record

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        with open(self.record, "a") as f:
            f.write(f"{len(batch[0])}\n")


class RaiseAtStep(L.Callback):
    """Raise ``RuntimeError("probe failure")`` once optimizer step ``step`` is done, as a bug in a
    training step would.

    Args:
        step: The ``trainer.global_step`` to fail at.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError("probe failure")


class FreezeUntilEpoch(BaseFinetuning):
    """A user's finetuning callback: the task's backbone frozen until ``epoch``, then trained in a
    parameter group of its own.

    Args:
        epoch: The epoch that unfreezes the backbone.
    """

    def __init__(self, epoch: int = 1) -> None:
        super().__init__()
        self.epoch = epoch

    def freeze_before_training(self, pl_module) -> None:
        self.freeze(pl_module.backbone)

    def finetune_function(self, pl_module, current_epoch, optimizer) -> None:
        if current_epoch == self.epoch:
            self.unfreeze_and_add_param_group(pl_module.backbone, optimizer)


class SignalAt(L.Callback):
    """Send ``signum`` to this process once, at ``hook``, once ``trainer.global_step >= step``, on
    global rank ``rank``: a scheduler's signal at a known point of the run.

    Args:
        hook: ``setup``, ``on_sanity_check_start``, ``on_train_batch_end``, ``on_validation_batch_end``
            (not during the sanity check) or ``on_test_batch_end``.
        step: The ``trainer.global_step`` from which on the signal is sent.
        signum: The signal (15: SIGTERM, 2: SIGINT, 10: SIGUSR1).
        rank: The global rank that sends it to itself.
    """

    def __init__(self, hook: str, step: int = 0, signum: int = 15, rank: int = 0) -> None:
        self.hook, self.step, self.signum, self.rank = hook, step, signum, rank
        self.sent = False

    def _at(self, trainer, hook: str) -> None:
        if (
            hook == self.hook
            and not self.sent
            and trainer.global_step >= self.step
            and trainer.global_rank == self.rank
        ):
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def setup(self, trainer, pl_module, stage) -> None:
        self._at(trainer, "setup")

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        self._at(trainer, "on_sanity_check_start")

    def on_train_batch_end(self, trainer, *args) -> None:
        self._at(trainer, "on_train_batch_end")

    def on_validation_batch_end(self, trainer, *args) -> None:
        if not trainer.sanity_checking:
            self._at(trainer, "on_validation_batch_end")

    def on_test_batch_end(self, trainer, *args) -> None:
        self._at(trainer, "on_test_batch_end")


class WaitForSignalAt(L.Callback):
    """After optimizer step ``step``, on global rank ``rank``: write this process's pid to ``marker``
    and wait until ``<marker>.go`` exists (the test signals the process, then creates it), so that
    the signal comes from outside at a known step.

    Args:
        step: The ``trainer.global_step`` to wait at.
        marker: File that receives the pid.
        rank: The global rank that waits.
    """

    def __init__(self, step: int, marker: str, rank: int = 0) -> None:
        self.step, self.marker, self.rank = step, marker, rank

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            go = Path(self.marker + ".go")
            Path(self.marker + ".tmp").write_text(str(os.getpid()))
            Path(self.marker + ".tmp").replace(self.marker)
            deadline = time.monotonic() + 900
            while not go.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
