"""``ModelCheckpoint`` whose files are never left half-written."""

from __future__ import annotations

import os
from weakref import proxy

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

__all__ = ["AtomicCheckpoint"]


class AtomicCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (same arguments) writing each file under a temporary name in the
    same folder and renaming it into place (``os.replace``, atomic on POSIX and Windows).

    A process killed while it writes (preemption, SIGKILL, out of memory) leaves the previous
    ``last.ckpt`` or ``step=N.ckpt`` intact and, at worst, a ``.partial-*.tmp`` file beside it; a
    checkpoint under its final name is always complete. (Atomic against a killed process; surviving a
    power cut also needs the file system to keep the rename's order, which journaling ones do.)
    """

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

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        # Overrides ModelCheckpoint._save_checkpoint (lightning 2.6.6); same bookkeeping after the write.
        folder, name = os.path.split(filepath)
        # The temporary name must not contain "last": Lightning's ckpt_path="last" lists such files.
        temporary = os.path.join(folder, f".partial-{os.getpid()}-{abs(hash(name))}.tmp")
        trainer.save_checkpoint(temporary, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(temporary, filepath)
        trainer.strategy.barrier("AtomicCheckpoint")
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
