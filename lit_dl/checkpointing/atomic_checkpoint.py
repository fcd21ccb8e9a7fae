"""``ModelCheckpoint`` whose ``last.ckpt`` is the last epoch and whose files are written atomically."""

import contextlib
import copy
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from weakref import proxy

import fsspec
import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.plugins.io import AsyncCheckpointIO
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_dl._lightning import fast_dev_run, saves_at_train_epoch_end
from lit_dl.checkpointing.atomic_io import find_checkpoint_io, install_atomic_io
from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.errors import ConfigError

__all__ = ["AtomicCheckpoint"]


class AtomicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (same arguments, state and state key) with three additions:

    - **Atomic files.** Its ``setup`` wraps the strategy's checkpoint I/O in
      :class:`~lit_dl.checkpointing.atomic_io.AtomicCheckpointIO` (whatever plugin is there: Lightning's
      default, ``AsyncCheckpointIO``, a user's own): each local file is written under a temporary name
      in its own folder and renamed into place, so a process killed while it writes (preemption,
      SIGKILL, out of memory) leaves the previous ``last.ckpt`` or ``step=N.ckpt`` intact; files go
      through no ``$TMPDIR``; remote ``dirpath`` (``s3://``, ``memory://``...) is written by the
      plugin, through the filesystem; loads check the checksums inside the file. This holds for every
      file written through the strategy (``Trainer.save_checkpoint``, ``OnExceptionCheckpoint``,
      SLURM's ``hpc_ckpt``), not only this callback's.
    - **``last.ckpt`` at every epoch end and at SIGTERM.** With ``save_last: true``, Lightning 2.6 rewrites
      ``last.ckpt`` at an epoch end only when a top-k checkpoint was saved at the same step, so with a
      monitor it holds the last *improving* epoch and ``--ckpt_path last`` silently resumes from there.
      Here it holds the last epoch (and the last ``every_n_train_steps`` step), as resuming needs: at
      each epoch's checkpoint point (the train epoch's end, or the validation's end when
      ``ModelCheckpoint`` saves there) it is written unless this step is saved already. A step that
      saves a top-k file writes ``last.ckpt`` beside it, as ``ModelCheckpoint`` does: two files, no
      link between them. With ``last_min_seconds`` the extra epoch-end writes come at most that
      often (see below), and training's end always brings it up to date. When Lightning stops the
      fit because the process got SIGTERM (``SIGTERMException``, at a batch boundary: preemption,
      ``scancel``, ``kill``), ``last.ckpt`` is written at that step, so the resumed run loses
      nothing. ``save_last: link`` is Lightning's, unchanged.
    - **Writes in the background**, with ``async_write: true``
      (:class:`~lit_dl.checkpointing.background_io.BackgroundCheckpointIO`): the state's tensors are
      copied at the save point and training goes on while the copy is pickled and written; removals
      of older top-k files follow the writes in order. Every write has landed when ``fit`` returns
      (also after an error). A logger that reads the checkpoint files (``after_save_checkpoint``, e.g.
      W&B or MLflow with ``log_model``) keeps the writes synchronous, and so does a strategy other than
      single-device and DDP (FSDP and DeepSpeed write their own, possibly sharded, files). Lightning's
      ``AsyncCheckpointIO`` does the same in its own thread; the two together are refused.

    Its state and state key are ``ModelCheckpoint``'s: a checkpoint written with either class restores
    the other's best and top-k bookkeeping.

    ``last_min_seconds`` bounds what ``last.ckpt`` costs when epochs are short: an epoch end that saves
    no top-k file writes it only once that many seconds have passed since fit started or it was last
    written; the end of training (``max_epochs``, ``max_steps``, early stopping) always writes it if
    it is behind. A run stopped before its end loses at most that many seconds or one epoch,
    whichever is longer, and resumes bit-identical from whatever ``last.ckpt`` holds. Rank 0's clock
    decides under DDP.

    Args:
        dirpath: Folder of the checkpoint files (a local path or an fsspec URL); default the run
            folder's ``checkpoints``.
        filename: File name template, e.g. ``"{epoch}-{val/acc:.3f}"``; default ``"{epoch}-{step}"``.
        monitor: The logged metric that ranks the top-k files; ``None`` keeps the latest.
        verbose: Print a line at each save.
        save_last: Keep ``last.ckpt``, the state to resume from (``"link"``: Lightning's symbolic link).
        save_top_k: How many ranked files to keep (-1: all, 0: none).
        save_on_exception: Write a checkpoint when training raises.
        save_weights_only: Write the weights only (no optimizer, loop or callback state).
        mode: ``"min"`` or ``"max"``: which way the monitor improves.
        auto_insert_metric_name: Write ``name=value`` for each metric in ``filename``.
        every_n_train_steps: Save every that many optimizer steps (0/None: not by steps).
        train_time_interval: Save every that much training time.
        every_n_epochs: Save every that many epochs (default 1 when no other cadence is set).
        save_on_train_epoch_end: Save at the train epoch's end (else at the validation's end);
            default: Lightning's choice.
        enable_version_counter: Add ``-v1``, ``-v2`` to a name that exists already.
        async_write: Write the files in a background thread.
        last_min_seconds: Seconds between two epoch-end writes of ``last.ckpt`` at least (>= 0); 0
            writes it at every epoch end.
    """

    def __init__(
        self,
        dirpath: str | Path | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
        *,
        async_write: bool = False,
        last_min_seconds: float = 0.0,
    ) -> None:
        if not last_min_seconds >= 0:  # also NaN
            raise ConfigError(f"last_min_seconds must be >= 0, got {last_min_seconds!r}")
        super().__init__(
            dirpath=dirpath,
            filename=filename,
            monitor=monitor,
            verbose=verbose,
            save_last=save_last,
            save_top_k=save_top_k,
            save_on_exception=save_on_exception,
            save_weights_only=save_weights_only,
            mode=mode,
            auto_insert_metric_name=auto_insert_metric_name,
            every_n_train_steps=every_n_train_steps,
            train_time_interval=train_time_interval,
            every_n_epochs=every_n_epochs,
            save_on_train_epoch_end=save_on_train_epoch_end,
            enable_version_counter=enable_version_counter,
        )
        self.async_write = bool(async_write)
        self.last_min_seconds = float(last_min_seconds)
        # Nothing can be due at a batch end without a step or time cadence (ModelCheckpoint returns too).
        self._saves_at_batch_ends = bool(every_n_train_steps) or train_time_interval is not None
        self._versions = bool(enable_version_counter)
        self._key_cache: tuple[tuple[Any, ...], str] | None = None
        self._dumps = 0  # checkpoints dumped (on every rank) since setup
        self._last_step: int | None = None  # the step last.ckpt was last written at
        self._last_written_at: float | None = None  # _clock() of that write
        self._background: BackgroundCheckpointIO | None = None

    @property
    def state_key(self) -> str:
        # ModelCheckpoint's key, with its class name: the state restores into either class. Lightning
        # reads it at every hook call (the profiler's action name) and ModelCheckpoint builds it with
        # repr() each time: keep it while its inputs stay the same.
        inputs = (self.monitor, self.mode, self.every_n_epochs)
        if self._key_cache is None or self._key_cache[0] != inputs:
            key = super().state_key
            self._key_cache = (inputs, ModelCheckpoint.__qualname__ + key[len(type(self).__qualname__) :])
        return self._key_cache[1]

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Checkpoints of lit_dl before this class took ModelCheckpoint's key hold its state under its own
        # name: restore that too.
        states = checkpoint.get("callbacks")
        if isinstance(states, dict) and self.state_key not in states:
            legacy = type(self).__qualname__ + self.state_key[len(ModelCheckpoint.__qualname__) :]
            if legacy in states:
                states[self.state_key] = states[legacy]
        super().on_load_checkpoint(trainer, pl_module, checkpoint)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.async_write and find_checkpoint_io(trainer.strategy.checkpoint_io, AsyncCheckpointIO):
            raise ConfigError(
                "AtomicCheckpoint(async_write=True) and the AsyncCheckpointIO plugin both write checkpoints "
                "in a thread: remove the plugin or set async_write false"
            )
        super().setup(trainer, pl_module, stage)
        install_atomic_io(trainer.strategy)
        self._dumps, self._last_step = 0, None
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

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._dumps += 1  # every checkpoint the Trainer builds, on every rank
        super().on_save_checkpoint(trainer, pl_module, checkpoint)

    # ---------------------------------------------------------------------------------------------
    # Saving hooks: ModelCheckpoint's, then last.ckpt where this step has none.
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if not self._saves_at_batch_ends:
            return
        with self._in_background():
            self._saving(super().on_train_batch_end, trainer, pl_module, *args)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self._in_background():
            self._saving(super().on_train_epoch_end, trainer, pl_module)
            if saves_at_train_epoch_end(self, trainer):
                self._refresh_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        with self._in_background():
            self._saving(super().on_validation_end, trainer, pl_module)
            if not saves_at_train_epoch_end(self, trainer):
                self._refresh_last(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        with self._in_background():
            self._saving(super().on_exception, trainer, pl_module, exception)
            if isinstance(exception, SIGTERMException):
                # Lightning stopped at a batch boundary because the process got SIGTERM (preemption):
                # last.ckpt at this step, so that the resumed run loses nothing.
                self._refresh_last(trainer, due=True)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # ModelCheckpoint's on_train_end writes last.ckpt when it saved nothing itself; here it is
        # written whenever it is behind the final step (an epoch end skipped by last_min_seconds).
        with self._in_background():
            if self.save_last is True:
                self._refresh_last(trainer, due=True)
            else:  # "link": Lightning's
                super().on_train_end(trainer, pl_module)
        if self._background is not None:
            # Every file is on disk before any rank goes on (fit-then-test loads "best" on every rank).
            self._background.wait()
            trainer.strategy.barrier("AtomicCheckpoint.on_train_end")

    @contextlib.contextmanager
    def _in_background(self) -> Iterator[None]:
        with self._background.in_background() if self._background is not None else contextlib.nullcontext():
            yield

    def _saving(self, hook: Any, trainer: L.Trainer, *args: Any) -> None:
        """Run ModelCheckpoint's ``hook``; note the step when it saved a file (and so ``last.ckpt``:
        ``ModelCheckpoint`` writes it after every file it saves, with ``save_last: true``)."""
        before = self._dumps
        hook(trainer, *args)
        if self._dumps != before and self.save_last is True:
            self._last_step, self._last_written_at = trainer.global_step, _clock()

    def _refresh_last(self, trainer: L.Trainer, due: bool = False) -> None:
        """Write ``last.ckpt`` unless this step has it, nothing may be saved now (sanity check,
        validate, test, ``fast_dev_run``) or ``last_min_seconds`` says not yet (unless ``due``)."""
        if (
            self.save_last is not True
            or self._last_step == trainer.global_step
            or trainer.global_step == 0
            or bool(fast_dev_run(trainer))
            or trainer.state.fn != TrainerFn.FITTING
            or trainer.sanity_checking
        ):
            return
        if due or self._last_is_due(trainer):
            self._write_last(trainer)

    def _last_is_due(self, trainer: L.Trainer) -> bool:
        """Whether ``last_min_seconds`` have passed; every rank takes rank 0's answer, so that all of
        them enter the save together or none does."""
        if self.last_min_seconds <= 0:
            return True
        elapsed = _clock() - (self._last_written_at or 0.0)
        return bool(trainer.strategy.broadcast(elapsed >= self.last_min_seconds))

    def _write_last(self, trainer: L.Trainer) -> None:
        """Write ``last.ckpt`` as ``ModelCheckpoint`` names, writes and rotates it (lightning 2.6.6)."""
        metrics = _name_metrics(trainer)
        name = self.CHECKPOINT_NAME_LAST
        filepath = self.format_checkpoint_name(metrics, name)
        version = self.STARTING_VERSION
        while self._versions and self.file_exists(filepath, trainer) and filepath != self.last_model_path:
            filepath, version = self.format_checkpoint_name(metrics, name, ver=version), version + 1
        # the path is part of the state that is saved
        previous, self.last_model_path = self.last_model_path, filepath
        trainer.save_checkpoint(filepath, self.save_weights_only)
        self._last_step, self._last_written_at = trainer.global_step, _clock()
        if previous and previous != filepath and self._owns(trainer, previous):
            trainer.strategy.remove_checkpoint(previous)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))

    def _owns(self, trainer: L.Trainer, path: str) -> bool:
        """Whether an older file may be removed: ModelCheckpoint's rule (a remote file, or a local one
        in ``dirpath`` that the run did not resume from)."""
        if fsspec.utils.get_protocol(str(path)) != "file":
            return True
        resumed = trainer.ckpt_path
        if resumed is not None and Path(resumed).absolute() == Path(path).absolute():
            return False
        return Path(str(self.dirpath)).absolute() in Path(path).absolute().parents


_clock = time.monotonic  # the interval's clock (a test replaces it)


def _name_metrics(trainer: L.Trainer) -> dict[str, Any]:
    """What a file name template can use, as ``ModelCheckpoint`` builds it: the callback metrics (cloned,
    cheaper than its deep copy) with ``epoch`` and ``step`` as integer tensors."""
    metrics = {
        name: value.detach().clone() if isinstance(value, torch.Tensor) else copy.deepcopy(value)
        for name, value in trainer.callback_metrics.items()
    }
    epoch, step = metrics.get("epoch"), metrics.get("step")
    metrics["epoch"] = epoch.int() if isinstance(epoch, torch.Tensor) else torch.tensor(trainer.current_epoch)
    metrics["step"] = step.int() if isinstance(step, torch.Tensor) else torch.tensor(trainer.global_step)
    return metrics


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
