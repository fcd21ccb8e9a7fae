"""``ModelCheckpoint`` whose files are never left half-written and whose ``last.ckpt`` is the last epoch."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any
from weakref import proxy

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.errors import ConfigError

__all__ = ["AtomicCheckpoint"]


class AtomicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (same arguments) with three differences:

    - **Atomic files.** Each file is written under a temporary name in the same folder and renamed
      into place (``os.replace``, atomic on POSIX and Windows). A process killed while it writes
      (preemption, SIGKILL, out of memory) leaves the previous ``last.ckpt`` or ``step=N.ckpt`` intact
      and, at worst, a ``.partial-*.tmp`` file beside it; a checkpoint under its final name is always
      complete. (Atomic against a killed process; surviving a power cut also needs the file system to
      keep the rename's order, which journaling ones do.)
    - **``last.ckpt`` at every epoch end.** With ``save_last: true``, Lightning 2.6 rewrites
      ``last.ckpt`` at an epoch end only when a top-k checkpoint was saved at the same step, so with a
      monitor it holds the last *improving* epoch and ``--ckpt_path last`` silently resumes from there.
      Here it holds the last epoch (and the last ``every_n_train_steps`` step), as resuming needs.
      With ``last_min_seconds`` it is rewritten at most that often (see below), and always brought up
      to date when training ends.
    - **One write per step.** When ``last.ckpt`` is due in the same hook call that just wrote a top-k
      file, it becomes a hard link to that file (a copy where links are not supported): the two would
      hold the same bytes but for the ``ModelCheckpoint``'s own ``last_model_path`` entry. A later
      rewrite of either name replaces that name only.

    With ``async_write: true`` the files are written in a background thread
    (:class:`~lit_dl.checkpointing.background_io.BackgroundCheckpointIO`): the state's tensors are copied
    at the save point and training goes on while the copy is pickled and written; the rename, the
    links and the removal of older top-k files follow each write in order, so the files stay atomic
    and a killed run leaves the previous ones intact. Every write has landed when ``fit`` returns
    (also after an error). A logger that reads the checkpoint files (``after_save_checkpoint``, e.g.
    W&B or MLflow with ``log_model``) keeps the writes synchronous, and so does a strategy other than
    single-device and DDP (FSDP and DeepSpeed write their own, possibly sharded, files).

    ``last_min_seconds`` bounds what ``last.ckpt`` costs when epochs are short: a save point (epoch
    end, ``every_n_train_steps`` step) writes it only once that many seconds have passed since fit
    started or it was last written; the end of training (``max_epochs``, ``max_steps``, early stopping)
    always writes it if it is behind, and a top-k file saved at a save point is still linked to it
    (no second write). A run stopped before its end loses at most that many seconds or one epoch,
    whichever is longer, and resumes bit-identical from whatever ``last.ckpt`` holds. Rank 0's clock
    decides under DDP.

    Args:
        async_write: Write the files in a background thread.
        last_min_seconds: Seconds between two writes of ``last.ckpt`` at least (>= 0); 0 writes it at
            every save point.
        *args: ``ModelCheckpoint``'s positional arguments.
        **kwargs: ``ModelCheckpoint``'s keyword arguments.
    """

    def __init__(
        self, *args: Any, async_write: bool = False, last_min_seconds: float = 0.0, **kwargs: Any
    ) -> None:
        if not last_min_seconds >= 0:  # also NaN
            raise ConfigError(f"last_min_seconds must be >= 0, got {last_min_seconds!r}")
        super().__init__(*args, **kwargs)
        self.async_write = bool(async_write)
        self.last_min_seconds = float(last_min_seconds)
        self._last_written_at: float | None = None  # _clock() of the last write of last.ckpt
        self._force_last = False  # write last.ckpt whatever the interval (see _last_forced)
        self._written_in_hook: list[str] | None = None  # files written by the current saving hook
        self._background: BackgroundCheckpointIO | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        checkpoint_io = getattr(trainer.strategy, "checkpoint_io", None)
        if isinstance(checkpoint_io, AsyncCheckpointIO):
            raise ConfigError(
                "AtomicCheckpoint renames each checkpoint file as soon as it is written, and "
                "AsyncCheckpointIO writes it later in a thread: remove the AsyncCheckpointIO plugin and set "
                "AtomicCheckpoint(async_write=True) instead (atomic files written in the background)"
            )
        super().setup(trainer, pl_module, stage)
        self._last_written_at = _clock()  # the interval counts from the start of fit
        self._background = None
        if (
            self.async_write
            and _writes_through_checkpoint_io(trainer.strategy)
            and not any(_reads_checkpoint_files(logger) for logger in trainer.loggers)
        ):
            checkpoint_io = trainer.strategy.checkpoint_io
            if not isinstance(checkpoint_io, BackgroundCheckpointIO):
                checkpoint_io = BackgroundCheckpointIO(checkpoint_io)
                trainer.strategy.checkpoint_io = checkpoint_io
            self._background = checkpoint_io

    @property
    def state_key(self) -> str:
        # Lightning reads a callback's state_key at every hook call (the profiler's action name), and
        # ModelCheckpoint builds it with repr() each time: keep it for as long as its inputs stay the same.
        inputs = (
            self.monitor,
            self.mode,
            self._every_n_train_steps,
            self._every_n_epochs,
            self._train_time_interval,
        )
        cached = getattr(self, "_state_key_cache", None)
        if cached is None or cached[0] != inputs:
            cached = self._state_key_cache = (inputs, super().state_key)
        return cached[1]

    # The private ModelCheckpoint methods used below (_save_checkpoint, _save_last_checkpoint,
    # _should_skip_saving_checkpoint, _should_save_on_train_epoch_end, _monitor_candidates,
    # _last_global_step_saved, _last_checkpoint_saved) and attributes (_every_n_train_steps,
    # _train_time_interval) were checked against lightning 2.6.6.
    @contextlib.contextmanager
    def _saving_hook(self) -> Iterator[None]:
        self._written_in_hook = []
        try:
            with (
                self._background.in_background() if self._background is not None else contextlib.nullcontext()
            ):
                yield
        finally:
            self._written_in_hook = None

    def _run(self, fn: Any, *args: Any) -> None:
        """``fn(*args)`` now, or queued behind the pending writes with ``async_write``."""
        if self._background is not None and self._written_in_hook is not None:
            self._background.submit(fn, *args)
        else:
            fn(*args)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._every_n_train_steps < 1 and self._train_time_interval is None:
            return  # nothing can be due at a batch end: ModelCheckpoint would return too, a little later
        with self._saving_hook():
            super().on_train_batch_end(trainer, pl_module, *args)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self._saving_hook():
            super().on_train_epoch_end(trainer, pl_module)
            if self._should_save_on_train_epoch_end(trainer):
                self._save_last_if_this_step_is_unsaved(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self._saving_hook():
            super().on_validation_end(trainer, pl_module)
            if not self._should_save_on_train_epoch_end(trainer):
                self._save_last_if_this_step_is_unsaved(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self._saving_hook():
            super().on_train_end(trainer, pl_module)
            if self.save_last and not self._should_skip_saving_checkpoint(trainer):
                # the last save point's last.ckpt was skipped (last_min_seconds): bring it up to date
                with self._last_forced():
                    self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        if self._background is not None:
            # Every file is on disk before any rank goes on (fit-then-test loads "best" on every rank).
            self._background.wait()
            trainer.strategy.barrier("AtomicCheckpoint.on_train_end")

    def _monitor_candidates(self, trainer: L.Trainer) -> dict[str, Any]:
        # ModelCheckpoint's own deep-copies every callback metric: about 0.15 ms a scalar tensor on a
        # small CPU, called twice per epoch here. A clone is the same point-in-time copy, far cheaper;
        # the epoch/step handling is ModelCheckpoint's (lightning 2.6.6).
        candidates = {
            name: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
            for name, value in trainer.callback_metrics.items()
        }
        epoch, step = candidates.get("epoch"), candidates.get("step")
        candidates["epoch"] = (
            epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
        )
        candidates["step"] = (
            step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
        )
        return candidates

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        with self._last_forced():  # save_on_exception: last.ckpt too, whatever the interval
            super().on_exception(trainer, pl_module, exception)

    @contextlib.contextmanager
    def _last_forced(self) -> Iterator[None]:
        """Write ``last.ckpt`` at the saves in this block whatever ``last_min_seconds`` says."""
        self._force_last = True
        try:
            yield
        finally:
            self._force_last = False

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict[str, Any]) -> None:
        if self.save_last and (self._force_last or self._last_is_due(trainer)):
            self._last_written_at = _clock()
            super()._save_last_checkpoint(trainer, monitor_candidates)

    def _last_is_due(self, trainer: L.Trainer) -> bool:
        """Whether this save point writes ``last.ckpt`` (``last_min_seconds``); every rank takes rank
        0's answer, so that all of them enter the save together or none does. A top-k file written
        in the same hook is linked to it: no write to spare."""
        if self.last_min_seconds <= 0 or self._written_in_hook:
            return True
        elapsed = _clock() - (self._last_written_at or 0.0)
        return bool(trainer.strategy.broadcast(elapsed >= self.last_min_seconds))

    def _save_last_if_this_step_is_unsaved(self, trainer: L.Trainer) -> None:
        # At each epoch end or validation: skipped when this step is already saved (a top-k file and
        # last.ckpt both written above), when no checkpoint is due (sanity check, validate, test) or
        # when last.ckpt is not due yet (decided before its metrics are copied).
        if self.save_last and not self._should_skip_saving_checkpoint(trainer) and self._last_is_due(trainer):
            with self._last_forced():  # decided: no second broadcast
                self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # Overrides ModelCheckpoint._save_checkpoint; same bookkeeping after the write.
        folder, name = os.path.split(filepath)
        # The temporary name must not contain "last": Lightning's ckpt_path="last" lists such files.
        temporary = os.path.join(folder, f".partial-{os.getpid()}-{abs(hash(name))}.tmp")
        written = self._written_in_hook
        source = written[-1] if written and filepath == self.last_model_path else None
        if source is not None and source != filepath:
            if trainer.is_global_zero:  # every rank takes this branch: no rank enters a collective
                self._run(_link_or_copy, source, temporary)
        else:
            trainer.save_checkpoint(temporary, self.save_weights_only)  # queued with async_write
        if trainer.is_global_zero:
            self._run(os.replace, temporary, filepath)
        trainer.strategy.barrier("AtomicCheckpoint")
        if written is not None:
            written.append(filepath)
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))


_clock = time.monotonic  # the interval's clock (a test replaces it)


def _writes_through_checkpoint_io(strategy: Any) -> bool:
    """Whether ``strategy`` writes its checkpoints through ``checkpoint_io``: exactly the single-device
    and DDP strategies; DeepSpeed (a DDPStrategy subclass) and FSDP write their own files."""
    return type(strategy) in (SingleDeviceStrategy, DDPStrategy)


def _reads_checkpoint_files(logger: Logger) -> bool:
    """Whether ``logger`` overrides ``after_save_checkpoint`` (to upload the files, say). TensorBoard's
    override does nothing (checked against lightning 2.6.6)."""
    if isinstance(logger, TensorBoardLogger):
        return False
    return type(logger).after_save_checkpoint is not Logger.after_save_checkpoint


def _link_or_copy(source: str, target: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(target)
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, target)
