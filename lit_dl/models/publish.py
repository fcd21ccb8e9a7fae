"""Metrics put where ``self.log`` would put them, without its cost per call.

``self.log`` costs about 0.8 ms a call on a small CPU (Lightning moves each result's whole ``Metric``
state dict to the value's device at every call, then merges the results again at every batch end),
as much as a small model's training step. The task logs few values, at known points (a closed
training-loss window, the end of a validation epoch), so it puts them into the Trainer's metric dicts
and hands them to the loggers itself, through Lightning's private logger connector
(:func:`lit_dl._lightning.logger_connector`). The values are cleared with the rest at the start of each stage.
"""

from __future__ import annotations

from collections.abc import Collection

import lightning as L
from torch import Tensor

from lit_dl._lightning import logger_connector

__all__ = ["publish_epoch_metrics", "publish_step_metrics"]


def publish_step_metrics(trainer: L.Trainer, values: dict[str, Tensor], prog_bar: Collection[str]) -> None:
    """Put ``values`` (0-dim tensors) into ``trainer.callback_metrics``, and those named in ``prog_bar``
    into ``trainer.progress_bar_metrics`` (as numbers): what ``self.log(name, value, on_step=True,
    on_epoch=False, logger=False)`` does for a value logged from ``training_step``, callable from any
    hook. The values stay until replaced, as logged step values do. Give CPU tensors on a GPU: the bar
    reads each value with ``item()``."""
    connector = logger_connector(trainer)
    connector._callback_metrics.update(values)
    connector._progress_bar_metrics.update({name: values[name].item() for name in prog_bar if name in values})


def publish_epoch_metrics(trainer: L.Trainer, values: dict[str, Tensor]) -> None:
    """What ``self.log(name, value, on_epoch=True, prog_bar=True)`` of already reduced epoch values
    does by the end of an evaluation epoch inside ``fit``: ``values`` go into ``callback_metrics`` (for
    checkpoint monitors, early stopping, a plateau scheduler) and the progress bar, and, outside the
    sanity check, to the loggers at Lightning's step with the ``epoch`` added (one host read of each
    value, once per epoch, as Lightning's)."""
    publish_step_metrics(trainer, values, prog_bar=values)
    if not trainer.sanity_checking:
        connector = logger_connector(trainer)
        connector._logged_metrics.update(values)  # trainer.logged_metrics, with or without a logger
        connector.log_metrics(dict(values))
