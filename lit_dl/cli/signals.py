"""Signals a scheduler can trust: a command stopped by SIGTERM or SIGINT exits ``128 + signal``.

Lightning stops a Trainer that gets SIGTERM at its next batch boundary (``SIGTERMException``, a
``SystemExit`` without a status), so the process exits 0 and a scheduler or script takes the
preempted run for a finished one. Under DDP it broadcasts from inside the signal handler, which
pairs with whatever collective the other ranks are in: a SIGTERM to one rank while the others wait
in a collective hangs the run. :func:`exit_on_signal` wraps a command so that:

- outside a Trainer's running stage (parsing, building, ``setup``, restoring a checkpoint, between
  ``fit`` and its test) the signal raises :class:`Interrupted` at once, after forwarding it to the
  processes the Trainer's launcher started: nothing was trained, and the run folder goes
  (:mod:`lit_dl.cli.run_folder`);
- inside a running stage (from its first hook on) lit_dl's handler replaces Lightning's and only
  records the signal. At the end of every training batch all ranks agree whether any of them got one
  (one all-reduce of a flag under DDP; Lightning 2.6 already syncs the host at each batch there);
  if so every rank raises ``SIGTERMException`` there, as Lightning does, so callbacks see the same
  exception (``AtomicCheckpoint`` writes ``last.ckpt`` at that step). ``fit``'s validation runs to
  its end first (its metrics choose the best checkpoint). With one process the sanity check, a
  ``validate``/``test``/``predict`` command and fit's test stop at their next batch end; under DDP,
  where the ranks may hold different numbers of evaluation batches, they run to their end. A second
  SIGINT (Ctrl+C) interrupts at once;
- the command then exits ``128 + signum`` (SIGTERM 143, SIGINT 130, the shell's convention) on
  every rank, a rank that got no signal itself with 143. A rank that the signal stopped outside a
  running stage leaves the others failing in their next collective: the launching process (rank 0
  of Lightning's DDP launcher) then finds that rank's exit status among the processes it started
  and exits with it too, without the collective's traceback. (Ranks started by ``torchrun`` or
  SLURM are not this process's children: there the launcher reports the failed rank.)
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_dl._lightning import launched_processes, process_rank, trainer_callbacks

__all__ = [
    "INTERRUPT_SIGNALS",
    "Interrupted",
    "SignalStop",
    "SignalTakeOver",
    "exit_on_signal",
    "exit_status",
    "signal_that_stopped_a_launched_rank",
    "watch_trainer",
]

INTERRUPT_SIGNALS = (signal.SIGTERM, signal.SIGINT)
"""The signals that stop a command with status ``128 + signum``."""


class Interrupted(BaseException):
    """Raised in the main thread when a signal arrives outside a Trainer's running stage.

    A ``BaseException``, as ``KeyboardInterrupt`` is: ``except Exception`` in user code does not swallow it.

    Args:
        signum: The signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def exit_status(signum: int) -> int:
    """The exit status of a command stopped by ``signum``: ``128 + signum`` (SIGTERM 143, SIGINT 130)."""
    return 128 + int(signum)


class _SignalWatch:
    """The handlers :func:`exit_on_signal` installs, and the signal they have seen."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.trainer: L.Trainer | None = None

    def interrupt(self, signum: int, frame: FrameType | None) -> None:
        """Outside a running stage: stop here, and pass the signal on to the launcher's processes."""
        if self.signum is None:
            self.signum = signum
        launcher = self.trainer.strategy.launcher if self.trainer is not None else None
        if launcher is not None:
            with contextlib.suppress(Exception):  # a rank already gone
                launcher.kill(signum)
        raise Interrupted(signum)

    def record(self, signum: int, frame: FrameType | None) -> None:
        """Inside a running stage: note the signal; :class:`SignalStop` stops at the batch boundary."""
        if self.signum is not None and signum == signal.SIGINT:
            self.interrupt(signum, frame)  # a second Ctrl+C: now
        if self.signum is None:
            self.signum = signum


_watches: list[_SignalWatch] = []


class SignalTakeOver(L.Callback):
    """Puts :func:`exit_on_signal`'s in-stage handler in place of Lightning's at a stage's first hook.

    Added by the CLI before every other callback: Lightning installs its SIGTERM handler just before
    a stage starts, and that handler broadcasts from inside the signal handler, which hangs or breaks
    a DDP run whose ranks are not at the same point; the sooner lit_dl's handler takes its place, the
    shorter that window (Lightning's teardown puts back the handlers it found, exit_on_signal's).
    """

    def __init__(self, watch: _SignalWatch) -> None:
        self.watch = watch

    def _take_over(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for signum in INTERRUPT_SIGNALS:
                signal.signal(signum, self.watch.record)

    def on_sanity_check_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._take_over()


class SignalStop(L.Callback):
    """Stops a running stage at a batch boundary on every rank once any rank got SIGTERM or SIGINT.

    Added by the CLI to the command's Trainer after every other callback, so that the batch's other
    hooks, checkpoints included, have run (:class:`SignalTakeOver`, before every other callback,
    installs the handler that records the signal). See :mod:`lit_dl.cli.signals`.
    """

    def __init__(self, watch: _SignalWatch) -> None:
        self.watch = watch

    def _any_rank_signalled(self, trainer: L.Trainer) -> bool:
        """Whether any rank got a signal: every rank gets the same answer (a collective under DDP)."""
        stop = bool(trainer.strategy.reduce_boolean_decision(self.watch.signum is not None, all=False))
        if stop and self.watch.signum is None:
            self.watch.signum = signal.SIGTERM  # another rank's signal stops this one
        return stop

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._any_rank_signalled(trainer):  # still start-up: nothing trained
            raise SIGTERMException

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self._any_rank_signalled(trainer):
            raise SIGTERMException

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._any_rank_signalled(trainer):  # during the last validation: no test after fit
            raise SIGTERMException

    def _eval_batch_end(self, trainer: L.Trainer) -> None:
        # fit's validation runs to its end (the epoch's metrics, the best checkpoint), then the next
        # training batch stops; the sanity check is start-up, and an evaluation alone has nothing to keep
        in_fit_validation = trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking
        if trainer.world_size == 1 and self.watch.signum is not None and not in_fit_validation:
            raise SIGTERMException

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._eval_batch_end(trainer)

    def on_test_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._eval_batch_end(trainer)

    def on_predict_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self._eval_batch_end(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._any_rank_signalled(trainer)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._any_rank_signalled(trainer)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._any_rank_signalled(trainer)


def watch_trainer(trainer: L.Trainer) -> None:
    """Put the innermost :func:`exit_on_signal` in charge of ``trainer``: a signal outside its running
    stage reaches the processes its launcher started, and inside one :class:`SignalStop` (appended to
    its callbacks once, with :class:`SignalTakeOver` put first) stops it at a batch boundary. A no-op
    outside :func:`exit_on_signal`."""
    if not _watches:
        return
    watch = _watches[-1]
    watch.trainer = trainer
    callbacks = trainer_callbacks(trainer)
    if not any(isinstance(cb, SignalStop) and cb.watch is watch for cb in callbacks):
        callbacks.insert(0, SignalTakeOver(watch))
        callbacks.append(SignalStop(watch))


@contextlib.contextmanager
def exit_on_signal() -> Iterator[None]:
    """Run a command so that SIGTERM or SIGINT stops it with status ``128 + signum`` (see the module).

    Prints one line on global rank 0, ``lit-dl: stopped by SIGTERM (exit status 143)``, naming the
    ``last.ckpt`` to resume from when the Trainer wrote one. Installs its handlers from the main
    thread only (elsewhere it maps ``SIGTERMException`` alone) and restores the previous ones.

    Raises:
        SystemExit: ``128 + signum`` after a signal, whatever the command raised or returned.
    """
    watch = _SignalWatch()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in INTERRUPT_SIGNALS:
            previous[signum] = signal.signal(signum, watch.interrupt)
    _watches.append(watch)
    try:
        yield
    except SIGTERMException:  # Lightning's own stop on SIGTERM (a handler installed around lit_dl's)
        if watch.signum is None:
            watch.signum = signal.SIGTERM
    except BaseException:
        if watch.signum is None and watch.trainer is not None:
            watch.signum = signal_that_stopped_a_launched_rank(watch.trainer)
        if watch.signum is None:
            raise
    finally:
        _watches.remove(watch)
        for number, handler in previous.items():
            signal.signal(number, handler)
    if watch.signum is not None:
        _report(watch)
        sys.exit(exit_status(watch.signum))


def signal_that_stopped_a_launched_rank(trainer: L.Trainer, wait_s: float = 2.0) -> int | None:
    """The signal that stopped one of the ranks ``trainer``'s launcher started, or ``None``.

    A rank stopped by SIGTERM or SIGINT exits ``128 + signum`` (or ``-signum`` when the signal
    killed it); ranks still running get up to ``wait_s`` seconds in all to exit, since a collective
    fails as soon as the stopped rank's connection closes, which can be just before it has exited.
    """
    processes = launched_processes(trainer)
    deadline = time.monotonic() + wait_s
    for proc in processes:
        try:
            code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            continue
        for signum in INTERRUPT_SIGNALS:
            if code in (exit_status(signum), -signum):
                return signum
    return None


def _report(watch: _SignalWatch) -> None:
    if process_rank() != 0:
        return
    assert watch.signum is not None
    name, status = signal.Signals(watch.signum).name, exit_status(watch.signum)
    callback = watch.trainer.checkpoint_callback if watch.trainer is not None else None
    last = getattr(callback, "last_model_path", "")
    resume = f"; resume from {last} (--ckpt_path last)" if last and Path(last).is_file() else ""
    print(f"lit-dl: stopped by {name} (exit status {status}){resume}", file=sys.stderr, flush=True)
