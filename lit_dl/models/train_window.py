"""When the training-loss window of :class:`~lit_dl.models.ClassificationTask` is written.

The task sums its training terms on the device at every micro-batch (no host sync, no ``self.log``)
and writes their mean when a window closes. A window closes with an optimizer step that Lightning
logs at (every ``log_every_n_steps`` steps), with the last step of an epoch (so an epoch shorter
than the interval, as each rank's share under DDP often is, still gets a point) and with the last
step of the run. Under gradient accumulation only the micro-batch that steps closes a window, so
the mean covers every micro-batch of it.
"""

from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch import Tensor

from lit_dl._lightning import log_every_n_steps

__all__ = ["FewBatchesWarningFilter", "OpenWindow", "closes_log_window", "ends_epoch_or_run"]

# Lightning's fit loop warns that an epoch shorter than log_every_n_steps logs nothing; a lit_dl task
# writes its window at every epoch end, so for it the advice is wrong (checked with lightning 2.6.6).
_FEW_BATCHES = r"The number of training batches \(\d+\) is smaller than the logging interval"


def closes_log_window(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether training batch ``batch_idx`` (called from ``training_step``) closes a logging window.

    Reads only public Trainer state: ``global_step`` counts the optimizer steps taken before this
    batch, so this batch's step is ``global_step + 1``.
    """
    every = log_every_n_steps(trainer)
    if every == 0:  # Lightning's "never log steps"
        return False
    last_of_epoch = batch_idx + 1 >= trainer.num_training_batches  # inf for unsized loaders
    if (batch_idx + 1) % trainer.accumulate_grad_batches and not last_of_epoch:
        return False  # an accumulation micro-batch: no optimizer step
    return (trainer.global_step + 1) % every == 0 or ends_epoch_or_run(trainer, batch_idx)


def ends_epoch_or_run(trainer: L.Trainer, batch_idx: int) -> bool:
    """Whether training batch ``batch_idx`` (called from ``training_step``) is the last of its epoch or
    of the run: the window it closes must be written before the epoch-end hooks read the metrics."""
    step = trainer.global_step + 1
    last_of_run = trainer.max_steps > 0 and step >= trainer.max_steps
    return batch_idx + 1 >= trainer.num_training_batches or last_of_run or trainer.should_stop


class OpenWindow:
    """The training terms summed on the device since the last window closed.

    A plain object the task mutates at every micro-batch: an attribute write on the LightningModule
    itself goes through ``nn.Module.__setattr__``'s checks (about 5 µs each on a small CPU).
    """

    __slots__ = ("count", "sums")

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.count = 0

    def add(self, terms: dict[str, Tensor]) -> None:
        """Add one micro-batch's terms (detached: the window keeps no graph)."""
        for name, value in terms.items():
            previous = self.sums.get(name)
            value = value.detach()
            self.sums[name] = value if previous is None else previous + value
        self.count += 1

    def close(self) -> tuple[list[str], Tensor]:
        """The terms' names and their means over the window, as one float tensor on the device; the
        window starts again empty."""
        names = list(self.sums)
        means = torch.stack([self.sums[name].float() for name in names]) / self.count
        self.reset()
        return names, means

    def reset(self) -> None:
        self.sums = {}
        self.count = 0


class FewBatchesWarningFilter:
    """Ignore Lightning's "fewer training batches than the logging interval" warning until ``exit``.

    Entered in the task's ``on_fit_start`` and left in ``on_train_start``: the warning is raised in
    between (when the fit loop sets up its data), and no other warning is touched.
    """

    def __init__(self) -> None:
        self._context: warnings.catch_warnings | None = None

    def enter(self) -> None:
        self.exit()
        self._context = warnings.catch_warnings()
        self._context.__enter__()
        warnings.filterwarnings("ignore", message=_FEW_BATCHES, category=PossibleUserWarning)

    def exit(self) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None
