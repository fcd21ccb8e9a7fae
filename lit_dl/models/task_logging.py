"""The logging plumbing of :class:`~lit_dl.models.ClassificationTask`, in one object the task owns.

The task computes its loss and updates its metrics; :class:`TaskLogging` decides when and how the
values reach the loggers, ``callback_metrics`` and the progress bar: the training-loss window
(:mod:`lit_dl.models.train_window`), publishing without ``self.log``'s cost
(:mod:`lit_dl.models.publish`), the evaluation metrics' reset bookkeeping and the filter for
Lightning's "few batches" warning. The task calls it from its Lightning hooks, one call each.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor
from torchmetrics import MetricCollection

from lit_dl._lightning import attached_trainer
from lit_dl.data.host_reads import HostCopy
from lit_dl.models.order_invariant_mean import OrderInvariantMean
from lit_dl.models.publish import publish_epoch_metrics, publish_step_metrics
from lit_dl.models.train_window import (
    FewBatchesWarningFilter,
    OpenWindow,
    closes_log_window,
    ends_epoch_or_run,
)

__all__ = ["TaskLogging"]


class TaskLogging:
    """Writes a :class:`~lit_dl.models.ClassificationTask`'s training window and evaluation metrics.

    A plain object (not an ``nn.Module``): the task mutates it at every micro-batch, and an attribute
    write on the LightningModule itself goes through ``nn.Module.__setattr__``'s checks.

    Args:
        task: The :class:`~lit_dl.models.ClassificationTask` whose ``eval_loss``, ``eval_metrics``,
            ``loggers`` and Trainer it reads (at each call, so a subclass may add metrics to
            ``eval_metrics`` after construction).
    """

    def __init__(self, task: L.LightningModule) -> None:
        self.task = task
        self.window = OpenWindow()
        self.pending: list[tuple[list[str], int, HostCopy]] = []  # closed windows, not yet written
        # Stages whose metric states fit's validation has just reset (outside inference mode) and nothing
        # has updated since: the next epoch start need not reset them again (about 0.3 ms each).
        self.eval_fresh: set[str] = set()
        self.few_batches_filter = FewBatchesWarningFilter()

    # ----------------------------------------------------------------------------------------------
    # Training
    def log_train_window(self, terms: dict[str, Tensor], batch_idx: int) -> None:
        """Log the mean of each term over the micro-batches since the last write.

        ``self.log`` costs about as much as a small model's whole step, and reading a CUDA value on the
        host stalls the GPU: so the terms are summed on the device and, when a window closes
        (:mod:`lit_dl.models.train_window`: every ``log_every_n_steps`` optimizer steps and at the end
        of each epoch and of the run), their means start a non-blocking copy to the host
        (:class:`lit_dl.data.host_reads.HostCopy`). A window is written once its copy has arrived, at a
        later step (on the CPU: at once); the last window of an epoch or of the run is waited for at
        once (one sync per epoch), so epoch-end hooks see it. A window goes to the loggers
        at the window's own last optimizer step (rank 0's value under DDP, as Lightning's step logging
        does), to ``callback_metrics`` as CPU tensors and to the progress bar as numbers, read
        without a sync (:func:`~lit_dl.models.publish.publish_step_metrics`: what ``self.log``
        would do, without its cost). The value averages every micro-batch of the window, a steadier
        signal than the last batch alone. Under ``Trainer(barebones=True)``, which turns logging off,
        nothing is summed or written.
        """
        trainer = attached_trainer(self.task)
        if trainer is not None and trainer.barebones:
            return
        self.window.add(terms)
        if trainer is None:
            return  # no Trainer to log to: a unit test
        last = False
        if closes_log_window(trainer, batch_idx):
            names, means = self.window.close()
            self.pending.append((names, trainer.global_step, HostCopy(means)))
            # The epoch's (or run's) last window is written now, waiting for it (one sync per epoch):
            # epoch-end hooks (a scheduler or checkpoint monitoring train/loss) read it.
            last = ends_epoch_or_run(trainer, batch_idx)
        self.write_train_windows(wait=last)

    def write_train_windows(self, wait: bool) -> None:
        """Write the closed windows whose values have reached the host (all of them when ``wait``) to
        the loggers, ``callback_metrics`` and the progress bar (``train/loss``)."""
        while self.pending and (wait or self.pending[0][2].ready()):
            names, step, copy = self.pending.pop(0)
            means = dict(zip(names, copy.get().unbind(), strict=True))  # 0-dim CPU tensors
            publish_step_metrics(self.task.trainer, means, prog_bar=("train/loss",))
            for logger in self.task.loggers:
                logger.log_metrics({name: float(mean) for name, mean in means.items()}, step=step)

    def on_fit_start(self) -> None:
        self.few_batches_filter.enter()

    def on_train_start(self) -> None:
        self.few_batches_filter.exit()
        self.pending = []

    def on_train_epoch_start(self) -> None:
        self.window.reset()

    def teardown(self) -> None:
        self.few_batches_filter.exit()

    # ----------------------------------------------------------------------------------------------
    # Evaluation
    @property
    def eval_loss(self) -> Mapping[str, OrderInvariantMean]:
        """The task's ``eval_loss`` (an ``nn.ModuleDict``, typed by what it holds)."""
        return cast("Mapping[str, OrderInvariantMean]", self.task.eval_loss)

    @property
    def eval_metrics(self) -> Mapping[str, MetricCollection]:
        """The task's ``eval_metrics`` (an ``nn.ModuleDict``, typed by what it holds)."""
        return cast("Mapping[str, MetricCollection]", self.task.eval_metrics)

    def start_eval(self, stage: str) -> None:
        """Empty metric states for an evaluation epoch: reset them unless fit's last validation epoch
        already did and nothing has run since (``validate`` and ``test`` leave inference tensors)."""
        if stage in self.eval_fresh:
            self.eval_fresh.discard(stage)
        else:
            self.reset_eval(stage)

    def reset_eval(self, stage: str) -> None:
        """Fresh metric states at the start of an evaluation epoch, made outside inference mode.

        ``trainer.validate`` runs under ``torch.inference_mode``, so states reset there are inference
        tensors, which a later ``fit`` (whose validation runs under ``no_grad``) may not update in place.
        """
        with torch.inference_mode(False):
            self.eval_loss[stage].reset()
            self.eval_metrics[stage].reset()

    def log_eval_epoch(self, stage: str) -> None:
        """Log the epoch's metrics, once per epoch (logging from every step would cost one ``self.log``
        per metric and batch, as much as a small model's forward pass).

        ``compute`` reduces across processes (torchmetrics syncs its states under DDP; every sample
        was seen by exactly one rank, see :class:`~lit_dl.data.EvalShardSampler`), so every rank logs
        the same, already reduced value. The validation inside ``fit`` computes the values and
        publishes them itself (:func:`~lit_dl.models.publish.publish_epoch_metrics`: the same names,
        values and logger steps as ``self.log``, without its cost: about 0.8 ms a call on a small CPU,
        three calls an epoch, and Lightning's merge of the results at every batch end). ``validate``
        and ``test`` log the metric objects through ``self.log``, which Lightning computes and resets
        at the epoch end and also returns from ``trainer.validate``/``trainer.test`` and prints;
        logging the objects (not their values) is how Lightning is told that no ``sync_dist`` is
        needed.
        """
        task = self.task
        trainer = attached_trainer(task)
        if trainer is not None and trainer.barebones:
            return  # logging is off (self.log would only warn): nothing to compute
        if trainer is not None and trainer.state.fn == TrainerFn.FITTING:
            values = {f"{stage}/loss": self.eval_loss[stage].compute(), **self.eval_metrics[stage].compute()}
            self.reset_eval(stage)  # empty until the next epoch, as Lightning leaves logged metric objects
            self.eval_fresh.add(stage)
            publish_epoch_metrics(trainer, values)
            return
        task.log(f"{stage}/loss", self.eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True)
        task.log_dict(self.eval_metrics[stage], on_step=False, on_epoch=True, prog_bar=True)
