"""The one place lit_dl touches a private Lightning (or torch) name.

Each function reaches one private attribute or method, says why no public API does the job, and
names the Lightning version it was checked against. ``tests/test_lightning_shim.py`` exercises every
function against the installed Lightning, so an upgrade that renames or changes one of them fails
there, loudly, instead of silently breaking metric publishing or exact resume. ``pyproject.toml`` pins
Lightning's minor version while this module is not empty; to lift the pin, run that test file on the
new version and mend what fails here.

It also holds typed reads of the public attributes that Lightning sets from outside their class
(``Trainer.callbacks`` is assigned by a connector, ``rank_zero_only.rank`` on a function object), which
a type checker cannot see: the ``# type: ignore`` they need lives here, once each.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING, Any, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher
from lightning.pytorch.utilities import rank_zero_only

if TYPE_CHECKING:
    # The fit and epoch loops' progress trackers are built as _ProcessedTracker but annotated as its
    # base _ReadyCompletedTracker, which has no `started` or `processed` (checked against 2.6.6).
    from lightning.pytorch.loops.progress import _ProcessedTracker

__all__ = [
    "CHECKED_AGAINST",
    "attached_trainer",
    "batches_processed_this_epoch",
    "disable_default_hp_metric",
    "drop_train_loader",
    "exponential_average_",
    "fast_dev_run",
    "forget_skipped_validation",
    "launched_processes",
    "log_every_n_steps",
    "logger_connector",
    "logger_version",
    "norms",
    "open_next_epoch_after_resume_at_epoch_end",
    "process_rank",
    "rebuild_dataloader",
    "saves_at_train_epoch_end",
    "set_logger_version",
    "trainer_callbacks",
    "trainer_datamodule",
]

CHECKED_AGAINST = "2.6.6"
"""The Lightning version every function below was checked against."""


def attached_trainer(module: L.LightningModule) -> L.Trainer | None:
    """The Trainer ``module`` is attached to, or ``None``.

    The public ``module.trainer`` raises when no Trainer is attached (a module used on its own in a
    unit test or a notebook); this is the same attribute without the raise. Checked against 2.6.6
    (``LightningModule._trainer``).
    """
    return module._trainer


def logger_connector(trainer: L.Trainer) -> Any:
    """The Trainer's private logger connector (checked against 2.6.6: ``Trainer._logger_connector``).

    Used by :mod:`lit_dl.models.publish` for ``_callback_metrics``, ``_progress_bar_metrics`` and
    ``_logged_metrics`` (the dicts behind the public ``trainer.callback_metrics``,
    ``progress_bar_metrics`` and ``logged_metrics``) and ``log_metrics`` (the method Lightning logs
    epoch-end values with). ``self.log`` is the public route; it costs about 0.8 ms a call on a small
    CPU, which is what publishing saves.
    """
    return trainer._logger_connector


def batches_processed_this_epoch(trainer: L.Trainer) -> int:
    """Training batches the fit loop has finished this epoch (checked against 2.6.6:
    ``fit_loop.epoch_loop.batch_progress.current.processed``).

    The public ``trainer.fit_loop.epoch_loop.batch_idx`` counts the batch in flight too, and the
    loop's prefetch makes the iterator's own count one ahead: only the progress tracker has the
    number a mid-epoch checkpoint needs.
    """
    current = cast("_ProcessedTracker", trainer.fit_loop.epoch_loop.batch_progress.current)
    return int(current.processed)


def drop_train_loader(trainer: L.Trainer) -> None:
    """Make the fit loop build its train loader again (checked against 2.6.6:
    ``FitLoop._combined_loader``).

    Routes around Lightning #20550: reading ``trainer.estimated_stepping_batches`` in
    ``configure_optimizers`` builds the train loader before a checkpoint's loop state is restored, and
    ``FitLoop.setup_data`` then keeps that loader and never hands it the saved ``state_dict``.
    Dropping it (from ``on_fit_start``) makes the loop rebuild it after the restore.
    """
    trainer.fit_loop._combined_loader = None


def rebuild_dataloader(loader: Any, sampler: Any) -> Any:
    """``loader`` built again with ``sampler`` in place of its own, keeping every other argument and its
    class (checked against 2.6.6: ``lightning.pytorch.utilities.data._update_dataloader``).

    The function Lightning injects its ``DistributedSampler`` with; it re-instantiates any
    ``DataLoader`` subclass from the arguments it was built with (captured while Lightning calls a
    ``*_dataloader`` hook). No public API rebuilds a loader whose class and arguments lit_dl does not know.
    """
    from lightning.pytorch.utilities.data import _update_dataloader

    return _update_dataloader(loader, sampler)


def set_logger_version(logger: Any, version: int | str) -> None:
    """Fix the version (run folder) of a ``TensorBoardLogger`` or ``CSVLogger`` built with
    ``version=None`` before it writes anything (checked against 2.6.6: both keep it in ``_version``,
    read lazily by ``version`` and ``log_dir``).

    The version is a constructor argument only; a logger built from YAML already exists when the CLI
    learns the run folder of the first logger.
    """
    logger._version = version


def disable_default_hp_metric(logger: Any) -> None:
    """Make a ``TensorBoardLogger`` write no HPARAMS session when it is given hyperparameters without
    metrics (checked against 2.6.6: ``default_hp_metric`` is kept in ``_default_hp_metric`` and read by
    ``log_hyperparams``, which then logs ``hp_metric = -1`` and a session of those parameters alone).

    TensorBoard shows the first session a run folder holds, so Lightning's at fit start (the model's
    arguments, ``-1``), or the LR-scaling record's, would hide the complete one
    :class:`lit_dl.cli.run_hparams.RunHparams` writes; ``default_hp_metric`` is a constructor argument
    only, and the logger already exists when its run starts.
    """
    logger._default_hp_metric = False


def logger_version(logger: Any) -> int | str | None:
    """The version a ``TensorBoardLogger`` or ``CSVLogger`` was given or has fixed, ``None`` while it
    has not picked one (checked against 2.6.6: ``_version``). The public ``version`` picks one when
    read, from a listing of the folders, which is what :func:`lit_dl.cli.run_folder.reserve_version_folder`
    replaces with an atomic choice.
    """
    return logger._version


def open_next_epoch_after_resume_at_epoch_end(trainer: L.Trainer) -> bool:
    """After a resume from a checkpoint written at the last training batch of an epoch, make the fit
    loop start the next epoch as an uninterrupted run does (checked against 2.6.6: ``FitLoop``'s
    ``restarted_mid_epoch``, ``reset_restart_stage`` and ``epoch_progress``).

    ``FitLoop.reset`` closes such an epoch (``processed`` and ``completed`` raised) but leaves the
    loop's restart stage at "mid-epoch", so the next epoch's ``on_advance_start`` neither counts it as
    ready and started nor calls ``on_train_epoch_start``. Every checkpoint of that epoch then records
    it as not started, and a run resumed from one of them trains the epoch's first batches a second
    time (two resumes in a row end two steps late). Clearing the stage before the next epoch starts
    (from ``on_train_start``, after ``FitLoop.reset``) restores the uninterrupted bookkeeping; the
    epoch loop keeps its own stage, which finishes the closed epoch's batch counters.

    Returns:
        Whether the stage was cleared.
    """
    fit_loop = trainer.fit_loop
    current = cast("_ProcessedTracker", fit_loop.epoch_progress.current)
    closed = current.ready == current.started == current.processed == current.completed
    if fit_loop.restarted_mid_epoch and closed:
        fit_loop.reset_restart_stage()
        return True
    return False


def forget_skipped_validation(trainer: L.Trainer) -> None:
    """Undo the fit loop's count of a validation that never ran (checked against 2.6.6:
    ``fit_loop.epoch_loop.val_loop.batch_progress.total``).

    Resumed from a checkpoint written at the last training batch of an epoch (before that epoch's
    validation), the epoch loop's first batch fast-forwards the validation counters as if that
    validation had run, and leaves them counted in the next epoch, where an uninterrupted run has
    reset them at the epoch's start. Called at the first batch after such a resume, once the
    fast-forward is done (``on_train_batch_start``).
    """
    trainer.fit_loop.epoch_loop.val_loop.batch_progress.total.reset()


def saves_at_train_epoch_end(callback: ModelCheckpoint, trainer: L.Trainer) -> bool:
    """Whether ``callback`` takes its epoch's checkpoint at the train epoch's end (else at the end of
    validation), as ``ModelCheckpoint`` decides it (checked against 2.6.6:
    ``ModelCheckpoint._should_save_on_train_epoch_end``).

    :class:`~lit_dl.callbacks.AtomicCheckpoint` refreshes ``last.ckpt`` at that same point. The public
    inputs (``save_on_train_epoch_end``, ``check_val_every_n_epoch``, ``val_check_interval``, the
    validation batches) do not decide it alone: time-based validation (``val_check_interval`` as a
    duration) is only in the private ``Trainer._val_check_time_interval``.
    """
    return bool(callback._should_save_on_train_epoch_end(trainer))


def launched_processes(trainer: L.Trainer) -> list[subprocess.Popen]:
    """The processes the Trainer's launcher started for the other local ranks; empty without them.

    Lightning's DDP launcher (``_SubprocessScriptLauncher``, a private class) keeps them in ``procs``
    (checked against 2.6.6); the public ``_Launcher`` interface only has ``launch`` and ``kill``.
    Other launchers (spawn, external processes, one device) have none here.
    """
    launcher = trainer.strategy.launcher
    if isinstance(launcher, _SubprocessScriptLauncher):
        return list(launcher.procs)
    return []


# Public attributes Lightning sets from outside their class (checked against 2.6.6).


def trainer_callbacks(trainer: L.Trainer) -> list[Callback]:
    """``trainer.callbacks``, the callbacks of the run in calling order."""
    return trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning's _CallbackConnector


def trainer_datamodule(trainer: L.Trainer) -> L.LightningDataModule | None:
    """``trainer.datamodule``: the data module of the running command, ``None`` without one."""
    return trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning's _DataConnector


def log_every_n_steps(trainer: L.Trainer) -> int:
    """``trainer.log_every_n_steps``: the steps between two logged training steps."""
    return int(trainer.log_every_n_steps)  # type: ignore[attr-defined]  # set by _LoggerConnector


def fast_dev_run(trainer: L.Trainer) -> int | bool:
    """``trainer.fast_dev_run``: ``False``, ``True`` (one batch) or the number of batches."""
    return trainer.fast_dev_run  # type: ignore[attr-defined]  # set by trainer/setup.py


def process_rank() -> int:
    """``rank_zero_only.rank``: this process's global rank as Lightning's rank-zero helpers read it
    (from the launcher's environment before a Trainer exists, then set by the strategy)."""
    return int(rank_zero_only.rank)  # type: ignore[attr-defined]  # an attribute of a function


# torch's foreach kernels: one call over a list of tensors (what torch.optim's optimizers use), not
# in torch's public API (checked against torch 2.13).


def norms(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The 2-norm of each of ``tensors``, in one call (``torch._foreach_norm``)."""
    return tuple(torch._foreach_norm(tensors))


def exponential_average_(averaged: list[torch.Tensor], current: list[torch.Tensor], decay: float) -> None:
    """``averaged[i] = decay * averaged[i] + (1 - decay) * current[i]`` for each pair, in place, with the
    same two multiplications and sum per element as the per-tensor expression (so bit-identical to
    it), as three calls (``torch._foreach_mul``, ``_foreach_mul_``, ``_foreach_add_``). The tensors
    share one device and floating-point dtype."""
    weighted = torch._foreach_mul(current, 1.0 - decay)
    torch._foreach_mul_(averaged, decay)
    torch._foreach_add_(averaged, weighted)
