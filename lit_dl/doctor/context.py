"""What the checks look at: the task, its built optimizer and scheduler, and the Trainer if there is one."""

from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass

import lightning as L
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lit_dl._lightning import attached_trainer, trainer_callbacks
from lit_dl.callbacks import WeightInit
from lit_dl.models import ClassificationTask
from lit_dl.optim import global_batch_size

__all__ = ["Context", "copy_task"]


@dataclass
class Context:
    """The patient.

    Attributes:
        task: The model.
        trainer: The Trainer it is attached to (``None``: the checks that need one are skipped).
        optimizer: The optimizer exactly as training builds it (parameter groups, scaled LR).
        scheduler: The LR scheduler as built (``None`` when there is none).
        interval: What one scheduler step is: ``"epoch"`` or ``"step"``.
        frequency: Scheduler steps happen every ``frequency`` intervals.
        weight_init: The configured :class:`~lit_dl.callbacks.WeightInit`, if any.
        world_size: Processes the run will use when the checks run in fewer (``lit-dl doctor`` checks
            a multi-device recipe in one process); ``None``: the Trainer's own.
        checkpoint: The checkpoint whose weights the task holds (``lit-dl doctor --ckpt_path``);
            ``None``: the weights are the initialisation.
        resume_step: The scheduler step the schedule continues at when ``fit`` resumes from
            ``checkpoint`` (:func:`lit_dl.models.resume_rule.checkpoint_schedule_step`); ``None``: a
            fresh run.
    """

    task: ClassificationTask
    trainer: L.Trainer | None
    optimizer: Optimizer
    scheduler: LRScheduler | None
    interval: str = "epoch"
    frequency: int = 1
    weight_init: WeightInit | None = None
    world_size: int | None = None
    checkpoint: str | None = None
    resume_step: int | None = None

    @classmethod
    def from_trainer(cls, task: ClassificationTask, trainer: L.Trainer) -> Context:
        """After the Trainer built the optimizers (from ``on_fit_start`` on)."""
        weight_init = next((c for c in trainer_callbacks(trainer) if isinstance(c, WeightInit)), None)
        if not trainer.optimizers:
            ctx = cls.from_task(task)
            ctx.trainer, ctx.weight_init = trainer, weight_init
            return ctx
        configs = trainer.lr_scheduler_configs
        sched = configs[0] if configs else None
        return cls(
            task=task,
            trainer=trainer,
            optimizer=trainer.optimizers[0],
            scheduler=sched.scheduler if sched is not None else None,
            interval=sched.interval if sched is not None else task.scheduler_interval,
            frequency=sched.frequency if sched is not None else 1,
            weight_init=weight_init,
        )

    @classmethod
    def from_task(cls, task: ClassificationTask, weight_init: WeightInit | None = None) -> Context:
        """Without a Trainer: the optimizer and scheduler built from the task's factories, unscaled."""
        optimizer = task.optimizer_factory(task.parameter_groups())
        factory = task.lr_scheduler_factory
        scheduler = factory(optimizer) if factory is not None else None
        return cls(task, None, optimizer, scheduler, task.scheduler_interval, 1, weight_init)

    def global_batch_size(self) -> int:
        """Samples behind one optimizer step in the run (``world_size`` processes when set)."""
        trainer = self.trainer
        if trainer is None:
            raise ValueError("the global batch size needs a Trainer")
        if self.world_size is None:
            return self.task.global_batch_size()
        return global_batch_size(
            self.task.per_device_batch_size(), self.world_size, 1, trainer.accumulate_grad_batches
        )

    def peak_lrs(self) -> list[float]:
        """Each group's configured LR before any schedule: the LR a run is tuned around."""
        lrs = []
        for group in self.optimizer.param_groups:
            lr = float(group.get("initial_lr", group["lr"]))
            lrs.append(max(lr, float(group.get("max_lr", 0.0))))  # OneCycleLR starts below its peak
        return lrs

    def run_length(self) -> tuple[float, str] | None:
        """How many scheduler steps the run takes, and the unit; ``None`` without a Trainer."""
        trainer = self.trainer
        if trainer is None:
            return None
        steps = trainer.estimated_stepping_batches
        world = self.world_size or trainer.world_size
        if world != trainer.world_size and not math.isinf(steps) and (trainer.max_steps or -1) < 0:
            # each of `world` processes sees 1/world of the batches (distributed sampler)
            per_epoch = math.ceil(
                math.ceil(trainer.num_training_batches * trainer.world_size / world)
                / trainer.accumulate_grad_batches
            )
            steps = per_epoch * (trainer.max_epochs or 1)
        if self.interval == "step":
            return steps / self.frequency, "optimizer steps"
        if trainer.max_epochs is not None and trainer.max_epochs > 0 and (trainer.max_steps or -1) < 0:
            epochs: float = trainer.max_epochs
        else:
            per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
            epochs = steps if math.isinf(steps) else math.ceil(steps / max(per_epoch, 1))
        return epochs / self.frequency, "epochs"

    def default_of(self, argument: str) -> object:
        """The default of a ``ClassificationTask.__init__`` argument."""
        return inspect.signature(ClassificationTask.__init__).parameters[argument].default


def copy_task(task: ClassificationTask) -> ClassificationTask:
    """A deep copy of ``task`` that shares nothing with it and is attached to no Trainer."""
    trainer = attached_trainer(task)  # deepcopy would copy the whole Trainer along
    task.trainer = None
    # The injected optimizer/scheduler factories are shared, not copied: they hold no state, and
    # jsonargparse's may carry an instantiation context that does not copy.
    shared = {id(f): f for f in (task.optimizer_factory, task.lr_scheduler_factory) if f is not None}
    try:
        return copy.deepcopy(task, memo=shared)
    finally:
        task.trainer = trainer
