"""How long a fit is, in scheduler steps, and schedules stretched to it.

The count is read from the Trainer once its fit loop has set up the training data (from
``on_train_start`` on), never earlier and never by loading data itself. Reading
``trainer.estimated_stepping_batches`` in ``configure_optimizers`` would make Lightning build the
train loader before a checkpoint's loader state is restored, and the fit loop then skips restoring
its mid-epoch state (Lightning issue #20550; checked against lightning 2.6).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
from torch.optim.lr_scheduler import ConstantLR, CosineAnnealingLR, LinearLR, OneCycleLR, PolynomialLR

from lit_dl.errors import ConfigError
from lit_dl.optim import RunLengthOneCycleLR, WarmupLR

__all__ = ["fit_schedules_to_run", "run_length", "schedule_ends_early"]


def run_length(trainer: L.Trainer, interval: Literal["step", "epoch"] = "step") -> float:
    """Scheduler steps in the whole fit: optimizer steps (``"step"``) or epochs (``"epoch"``).

    Optimizer steps per epoch are ``ceil(batches / accumulate_grad_batches)``, where ``batches`` is
    Lightning's own per-device count of training batches (``trainer.num_training_batches``: the
    loader's length on this rank after the distributed sampler, ``drop_last`` and
    ``limit_train_batches``); the run is ``max_epochs`` of them, cut at ``max_steps``. The same
    formula as ``trainer.estimated_stepping_batches``, without its side effect. ``inf`` for an
    endless run (``max_epochs=-1`` without ``max_steps``, or an unsized loader without ``max_steps``).

    Raises:
        RuntimeError: called before the fit loop set up its training data (before ``on_train_start``).
    """
    if trainer.train_dataloader is None:
        raise RuntimeError(
            "run_length() reads the training loader's length: call it from on_train_start on, "
            "after the fit loop has set up its data"
        )
    max_steps = math.inf if trainer.max_steps == -1 else trainer.max_steps
    max_epochs = math.inf if trainer.max_epochs in (None, -1) else trainer.max_epochs
    batches = trainer.num_training_batches
    per_epoch = math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else math.inf
    if interval == "step":
        return min(max_steps, max_epochs * per_epoch if per_epoch > 0 else 0)
    if math.isfinite(max_steps) and math.isfinite(per_epoch) and per_epoch > 0:
        return min(max_epochs, math.ceil(max_steps / per_epoch))
    return max_epochs


def fit_schedules_to_run(trainer: L.Trainer) -> None:
    """Stretch every LR schedule of the fit to its length, or refuse one that cannot follow it.

    - A scheduler with ``fit_to_run(run_length, unit)`` (:class:`lit_dl.optim.WarmupCosineLR`,
      :class:`~lit_dl.optim.WarmupStepLR`, :class:`~lit_dl.optim.RunLengthOneCycleLR`) gets the run length in
      its own unit (its ``interval``) when its ``total_steps`` is unset, and checks its warmup.
    - ``torch.optim.lr_scheduler.OneCycleLR`` with ``total_steps`` shorter than the run would raise
      mid-run ("Tried to step ... times"): a :class:`ConfigError` now instead.
    - Any other schedule with a fixed length (``total_steps`` of lit_dl's schedules, ``T_max``,
      ``total_iters``) that ends before the run gets a one-line warning naming both lengths
      (:func:`schedule_ends_early`).

    Idempotent: a ``total_steps`` already set (by the config) is kept. Called once per fit, at train
    start.
    """
    for config in trainer.lr_scheduler_configs:
        scheduler, interval = config.scheduler, config.interval
        length = run_length(trainer, "step" if interval == "step" else "epoch")
        unit = "optimizer steps" if interval == "step" else "epochs"
        fit = getattr(scheduler, "fit_to_run", None)
        if callable(fit):
            fit(length, unit=unit)
        elif isinstance(scheduler, OneCycleLR) and scheduler.total_steps < length:
            raise ConfigError(
                f"OneCycleLR total_steps={scheduler.total_steps} is shorter than the run ({int(length)} "
                f"{unit}) and would fail when it runs out; use lit_dl.optim.RunLengthOneCycleLR, whose total_steps "
                f"defaults to the run length"
            )
        warning = schedule_ends_early(scheduler, length / max(1, config.frequency), unit)
        if warning is not None:
            rank_zero_warn(warning)


# (class, attribute holding its length, what the LR does after it); the first match wins.
_FIXED_LENGTHS: tuple[tuple[type, str, str], ...] = (
    (CosineAnnealingLR, "T_max", "climbs back up"),
    (LinearLR, "total_iters", "stays at its final value"),
    (ConstantLR, "total_iters", "stays at its final value"),
    (PolynomialLR, "total_iters", "stays at its final value"),
)
_FIXES = {
    "total_steps": "leave total_steps unset (null) to follow the run, or give it the run's length",
    "T_max": "use lit_dl.optim.WarmupCosineLR with warmup_steps: 0, whose total_steps defaults to the run length",
    "total_iters": "give total_iters the run's length",
}


def schedule_ends_early(scheduler: Any, run: float, unit: str) -> str | None:
    """The warning for a schedule of fixed length that ends before a run of ``run`` scheduler steps,
    or ``None`` (no fixed length, an endless run, or long enough).

    lit_dl's schedules (``total_steps``) hold their final LR after their end; ``CosineAnnealingLR``
    (``T_max``) climbs back up; ``LinearLR``, ``ConstantLR`` and ``PolynomialLR`` (``total_iters``)
    hold their final value.
    """
    if math.isinf(run):
        return None
    name = type(scheduler).__name__
    attr, after = None, "stays at its final value"
    if isinstance(scheduler, (WarmupLR, RunLengthOneCycleLR)):
        attr = "total_steps"
    else:
        for cls, length_attr, consequence in _FIXED_LENGTHS:
            if isinstance(scheduler, cls):
                attr, after = length_attr, consequence
                break
    if attr is None:
        return None
    length = getattr(scheduler, attr, None)
    if not isinstance(length, (int, float)) or length >= run:
        return None
    return (
        f"{name} {attr}={length} is shorter than the run ({int(run)} {unit}): the LR {after} for the last "
        f"{int(run - length)} {unit}; {_FIXES[attr]}"
    )
