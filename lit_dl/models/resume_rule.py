"""On ``fit --ckpt_path``: the config says what trains, the checkpoint says where the run is.

Lightning restores a checkpoint's optimizer and LR scheduler whole: ``optimizer.load_state_dict``
brings back every parameter group's hyperparameters (``lr``, ``initial_lr``, ``weight_decay``,
betas, momentum, ...) along with the state tensors, and ``scheduler.load_state_dict`` the schedule's
arguments (``total_steps``, ``min_lr``, ...) along with its step counter. A run extended with a larger
``max_epochs`` or continued with a lower LR would so train with the checkpoint's values (a finished
cosine stays at its floor), while its ``config.yaml`` records the new ones.

:class:`ResumeRule` keeps from the checkpoint where the run is: the weights, the optimizer's state
tensors (momentum buffers, Adam moments), the schedule's step count, and what Lightning and the
callbacks restore besides (RNG states, the data position, callback states). From the config comes
what trains: every group's hyperparameters are those of the optimizer as the config builds it (LR
scaling included), and each schedule is the config's, fitted to this run's length and evaluated at
the restored step, as if the run had been planned with this config from its start (timm's
convention: a schedule is a function of the step and the config). With an unchanged config that is
the restored state exactly (the resumed run stays bit-identical to the uninterrupted one); each
change prints one line (``resume: lr 0.003 -> 0.0003 (from the config)``).

A checkpoint written mid-epoch continues its epoch exactly only with the epoch's own shape: another
per-device batch size, number of processes, training-set size or gradient accumulation is a
:class:`~lit_dl.errors.ConfigError` naming it and the way out.

Every checkpoint carries a small record of its run (:data:`RECORD_KEY`: run length, epoch shape,
optimizer and scheduler classes) so that the changes can be named; a checkpoint without one (plain
Lightning, older lit_dl) is resumed by the same rule with less to name.

The task calls it from its hooks: once per fit and once per checkpoint, never per step.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sized
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch.optim import Optimizer

from lit_dl._lightning import batches_processed_this_epoch
from lit_dl.errors import ConfigError
from lit_dl.models.run_length import fit_schedules_to_run, run_length
from lit_dl.optim import RunLengthOneCycleLR, WarmupLR

__all__ = ["RECORD_KEY", "ResumeRule", "RunRecord", "checkpoint_schedule_step", "schedule_step"]

RECORD_KEY = "lit_dl_run"
"""The checkpoint key under which :meth:`ResumeRule.on_save_checkpoint` writes its :class:`RunRecord`."""

# Scheduler state entries that say where the schedule is, or are derived from the group LRs (printed
# as the optimizer's lr), not arguments of the schedule.
_PROGRESS_KEYS = frozenset(
    {
        "last_epoch",
        "_step_count",
        "_last_lr",
        "_get_lr_called_within_step",
        "_is_initial",
        "verbose",
        "base_lrs",
    }
)
# Parameter-group entries that are not the optimizer's hyperparameters (or are printed as ``lr``).
_NOT_HYPERPARAMETERS = frozenset({"params", "param_names", "name", "lr", "initial_lr"})
# (record key, what the error calls it): what a mid-epoch checkpoint's epoch depends on.
_EPOCH_SHAPE = (
    ("batch_size", "batch size"),
    ("world_size", "number of processes"),
    ("train_samples", "training samples"),
    ("accumulate_grad_batches", "accumulate_grad_batches"),
)
# Schedules whose LR is closed-form in ``last_epoch``: continued by setting it, not by stepping.
_CLOSED_FORM = (WarmupLR, RunLengthOneCycleLR)


@dataclass(frozen=True)
class RunRecord:
    """What a checkpoint says about its run, beyond Lightning's own keys (plain values only).

    Attributes:
        max_epochs: The Trainer's ``max_epochs`` (``None`` or -1: unbounded).
        max_steps: The Trainer's ``max_steps`` (-1: unbounded).
        run_steps: The run's length in optimizer steps (``None``: endless or unknown).
        batches_per_epoch: Training batches per epoch on each process (``None``: unsized).
        batches_done: Training batches of the current epoch finished when the checkpoint was written.
        epochs_done: Epochs finished when the checkpoint was written.
        batch_size: The training loader's per-device batch size (``None``: unknown).
        train_samples: Samples in the training set (``None``: unknown).
        world_size: Processes of the run.
        accumulate_grad_batches: Batches per optimizer step.
        optimizers: Class of each optimizer, ``module.QualName``.
        schedulers: ``{"class", "interval", "frequency"}`` of each LR scheduler.
    """

    max_epochs: int | None
    max_steps: int
    run_steps: int | None
    batches_per_epoch: int | None
    batches_done: int
    epochs_done: int
    batch_size: int | None
    train_samples: int | None
    world_size: int
    accumulate_grad_batches: int
    optimizers: tuple[str, ...]
    schedulers: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, trainer: L.Trainer) -> RunRecord:
        """The record of ``trainer``'s fit as it stands (from ``on_train_start`` on)."""
        loader = _train_loader(trainer)
        batches = trainer.num_training_batches
        per_epoch = int(batches) if math.isfinite(batches) else None
        try:
            done = batches_processed_this_epoch(trainer)
        except AttributeError:
            done = 0
        try:
            steps = run_length(trainer, "step")
        except RuntimeError:  # no training data set up (a save outside a fit)
            steps = math.inf
        dataset = getattr(loader, "dataset", None)
        samples = len(dataset) if isinstance(dataset, Sized) else getattr(loader, "num_samples", None)
        batch_size = getattr(loader, "batch_size", None)
        return cls(
            max_epochs=trainer.max_epochs,
            max_steps=trainer.max_steps,
            run_steps=int(steps) if math.isfinite(steps) else None,
            batches_per_epoch=per_epoch,
            batches_done=done,
            epochs_done=trainer.current_epoch + int(per_epoch is not None and 0 < per_epoch <= done),
            batch_size=batch_size if isinstance(batch_size, int) else None,
            train_samples=samples if isinstance(samples, int) else None,
            world_size=trainer.world_size,
            accumulate_grad_batches=trainer.accumulate_grad_batches,
            optimizers=tuple(_qualname(type(opt)) for opt in trainer.optimizers),
            schedulers=tuple(
                {"class": _qualname(type(c.scheduler)), "interval": c.interval, "frequency": c.frequency}
                for c in trainer.lr_scheduler_configs
            ),
        )

    @classmethod
    def from_checkpoint(cls, checkpoint: dict[str, Any]) -> RunRecord | None:
        """The record a checkpoint carries, or ``None`` (plain Lightning, older lit_dl)."""
        saved = checkpoint.get(RECORD_KEY)
        if not isinstance(saved, dict):
            return None
        try:
            return cls(
                **{
                    **saved,
                    "optimizers": tuple(saved["optimizers"]),
                    "schedulers": tuple(saved["schedulers"]),
                }
            )
        except (KeyError, TypeError):  # a record of another lit_dl version: name less
            return None

    def as_dict(self) -> dict[str, Any]:
        """Plain values for the checkpoint (``torch.load(weights_only=True)`` reads them back)."""
        return {
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
            "optimizers": list(self.optimizers),
            "schedulers": [dict(s) for s in self.schedulers],
        }

    @property
    def mid_epoch(self) -> bool:
        """Written inside an epoch: some of its batches done, not all."""
        return self.batches_per_epoch is not None and 0 < self.batches_done < self.batches_per_epoch

    def steps_per_epoch(self) -> int | None:
        """Optimizer steps per epoch of the checkpoint's run."""
        if self.batches_per_epoch is None:
            return None
        return math.ceil(self.batches_per_epoch / self.accumulate_grad_batches)


def schedule_step(
    interval: str,
    frequency: int,
    steps_per_epoch: int | None,
    *,
    global_step: int,
    epochs_done: int,
    saved_state: dict[str, Any] | None,
    saved: dict[str, Any] | None,
    record: RunRecord | None,
) -> int:
    """The scheduler step a resumed schedule continues at: the steps it would have taken by now had
    the run been planned with this config from its start.

    The checkpoint's own step count (``last_epoch`` of ``saved_state``) when the schedule is stepped
    as it was (same interval, and for ``"step"`` the same optimizer steps per epoch); otherwise it
    is counted from where the run is: ``global_step`` optimizer steps (``epochs_done`` times this
    run's ``steps_per_epoch`` when resumed at an epoch end with another number of steps per epoch),
    or ``epochs_done`` epochs; divided by ``frequency``.

    Args:
        interval: ``"step"`` or ``"epoch"``, as the config steps the schedule.
        frequency: Intervals per scheduler step.
        steps_per_epoch: Optimizer steps per epoch in this run (``None``: unknown).
        global_step: Optimizer steps taken by the checkpoint's run.
        epochs_done: Epochs the checkpoint's run finished.
        saved_state: The checkpoint's state of this scheduler, or ``None``.
        saved: The :class:`RunRecord` entry of this scheduler, or ``None``.
        record: The checkpoint's :class:`RunRecord`, or ``None``.
    """
    old_per_epoch = record.steps_per_epoch() if record is not None else None
    new_shape = (
        interval == "step"
        and record is not None
        and not record.mid_epoch
        and None not in (old_per_epoch, steps_per_epoch)
        and old_per_epoch != steps_per_epoch
    )
    same_interval = saved is None or (saved.get("interval"), saved.get("frequency", 1)) == (
        interval,
        frequency,
    )
    if saved_state is not None and "last_epoch" in saved_state and same_interval and not new_shape:
        return int(saved_state["last_epoch"])
    if interval == "step":
        steps = epochs_done * steps_per_epoch if new_shape and steps_per_epoch is not None else global_step
        return steps // frequency
    return epochs_done // frequency


def checkpoint_schedule_step(
    checkpoint: dict[str, Any], index: int, interval: str, frequency: int, steps_per_epoch: int | None
) -> int:
    """:func:`schedule_step` of the ``index``-th schedule, from a loaded checkpoint alone (``lit-dl
    doctor --ckpt_path``, before Lightning restores anything)."""
    record = RunRecord.from_checkpoint(checkpoint)
    states = checkpoint.get("lr_schedulers") or []
    epochs = record.epochs_done if record is not None else int(checkpoint.get("epoch", 0))
    return schedule_step(
        interval,
        frequency,
        steps_per_epoch,
        global_step=int(checkpoint.get("global_step", 0)),
        epochs_done=epochs,
        saved_state=states[index] if index < len(states) else None,
        saved=record.schedulers[index] if record is not None and index < len(record.schedulers) else None,
        record=record,
    )


@dataclass
class _Configured:
    """The optimizers and schedulers as the config built them, before Lightning restores the checkpoint."""

    groups: list[list[dict[str, Any]]]  # per optimizer, each group's entries but its parameters
    schedulers: list[dict[str, Any] | None]  # state at step 0; None: metric-driven (kept as restored)


@dataclass
class _Restored:
    """The parts of the checkpoint the rule compares with the config."""

    record: RunRecord | None
    schedulers: list[dict[str, Any]]


class ResumeRule:
    """Applies the resume rule of this module to a fit; owned by :class:`~lit_dl.models.ClassificationTask`.

    The task calls :meth:`on_save_checkpoint`, :meth:`on_load_checkpoint`, :meth:`on_fit_start` and
    :meth:`on_train_start` from its hooks of those names; :meth:`on_train_start` also fits the
    schedules to the run (:func:`~lit_dl.models.run_length.fit_schedules_to_run`), resumed or not.
    """

    def __init__(self) -> None:
        self._configured: _Configured | None = None
        self._restored: _Restored | None = None

    def on_save_checkpoint(self, trainer: L.Trainer, checkpoint: dict[str, Any]) -> None:
        """Write the :class:`RunRecord` of the fit into ``checkpoint``."""
        checkpoint[RECORD_KEY] = RunRecord.of(trainer).as_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the checkpoint's record and scheduler states for :meth:`on_train_start`."""
        self._restored = _Restored(
            record=RunRecord.from_checkpoint(checkpoint),
            schedulers=copy.deepcopy(list(checkpoint.get("lr_schedulers") or [])),
        )

    def on_fit_start(self, trainer: L.Trainer) -> None:
        """Before Lightning restores the optimizer and schedulers: keep them as the config built them."""
        if trainer.ckpt_path is None:
            self._configured = None
            return
        self._configured = _Configured(
            groups=[[_entries(group) for group in opt.param_groups] for opt in trainer.optimizers],
            schedulers=[
                None if c.reduce_on_plateau else copy.deepcopy(c.scheduler.state_dict())
                for c in trainer.lr_scheduler_configs
            ],
        )

    def on_train_start(self, trainer: L.Trainer) -> None:
        """On a resume: the config's hyperparameters and schedules, at the restored step; each change
        printed. Then (resumed or not) every schedule fitted to the run.

        Raises:
            ConfigError: a mid-epoch checkpoint and a config that changes the epoch's shape.
        """
        configured, restored = self._configured, self._restored
        self._configured = self._restored = None
        if configured is None or restored is None or trainer.ckpt_path is None:
            fit_schedules_to_run(trainer)
            return
        record = restored.record
        if record is not None:
            _refuse_new_epoch_shape(record, RunRecord.of(trainer), str(trainer.ckpt_path))
        restored_lrs = {id(opt): [g["lr"] for g in opt.param_groups] for opt in trainer.optimizers}
        lines: list[str] = []
        for index, opt in enumerate(trainer.optimizers):
            lines += _take_configured_groups(opt, configured.groups[index], _nth(record, "optimizers", index))
        configs = trainer.lr_scheduler_configs
        for config, fresh, saved_state in zip(
            configs, configured.schedulers, _padded(restored.schedulers, len(configs)), strict=True
        ):
            if fresh is None:  # ReduceLROnPlateau: its LR follows the metric's history, kept as restored
                optimizer = config.scheduler.optimizer
                for group, lr in zip(optimizer.param_groups, restored_lrs[id(optimizer)], strict=True):
                    group["lr"] = lr
            else:
                _reset(config.scheduler, fresh, saved_state)
        fit_schedules_to_run(trainer)
        refits: list[str] = []
        positions: list[str] = []
        steps_per_epoch = _steps_per_epoch(trainer)
        for index, (config, fresh, saved_state) in enumerate(
            zip(configs, configured.schedulers, _padded(restored.schedulers, len(configs)), strict=True)
        ):
            if fresh is None:
                continue
            scheduler, saved = config.scheduler, _nth(record, "schedulers", index)
            step = schedule_step(
                config.interval,
                config.frequency,
                steps_per_epoch,
                global_step=trainer.global_step,
                epochs_done=trainer.current_epoch,
                saved_state=saved_state,
                saved=saved,
                record=record,
            )
            _continue_at(scheduler, step)
            unit = "optimizer steps" if config.interval == "step" else "epochs"
            changes, refit = _schedule_changes(scheduler, fresh, saved_state, saved, config.interval, unit)
            lines += changes
            refits += refit
            old_lr = restored_lrs[id(scheduler.optimizer)][0]
            new_lr = scheduler.optimizer.param_groups[0]["lr"]
            if not _same(old_lr, new_lr):
                length = getattr(scheduler, "total_steps", None)
                where = f"{unit[:-1]} {step}" + (f" of {length}" if length is not None else "")
                positions.append(
                    f"resume: {type(scheduler).__name__} at {where}: lr {_fmt(old_lr)} -> {_fmt(new_lr)}"
                )
        for index in range(len(configs), len(restored.schedulers)):
            saved = _nth(record, "schedulers", index)
            name = _short(saved["class"]) if saved is not None else "the checkpoint's"
            lines.append(f"resume: lr_scheduler {name} -> none (from the config)")
        lines = _run_length_lines(trainer, record, refits) + lines
        for line in lines + (positions if lines else []):
            rank_zero_info(line)


def _nth(record: RunRecord | None, field: str, index: int) -> Any:
    """``record.<field>[index]``, or ``None`` without a record or such an entry."""
    values = getattr(record, field) if record is not None else ()
    return values[index] if index < len(values) else None


def _padded(states: list[dict[str, Any]], length: int) -> list[dict[str, Any] | None]:
    """The checkpoint's scheduler states, one per configured scheduler (``None`` where it had none)."""
    return [states[i] if i < len(states) else None for i in range(length)]


def _entries(group: dict[str, Any]) -> dict[str, Any]:
    """A parameter group's entries but its parameters, copied (tensors cloned)."""
    return {
        k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
        for k, v in group.items()
        if k != "params"
    }


def _take_configured_groups(
    opt: Optimizer, configured: list[dict[str, Any]], saved_class: str | None
) -> list[str]:
    """Set every group of ``opt`` (as restored) to its configured entries; the lines naming the changes."""
    restored = opt.param_groups
    if len(restored) != len(configured):  # optimizer.load_state_dict refuses this first; kept as a guard
        raise ConfigError(
            f"the checkpoint's optimizer has {len(restored)} parameter groups, the config's {len(configured)}"
        )
    lines = []
    new_class = _qualname(type(opt))
    missing = any(key not in group for group in restored for key in opt.defaults)
    if (saved_class is not None and saved_class != new_class) or missing:
        old = _short(saved_class) if saved_class is not None else "another optimizer"
        opt.state.clear()  # momentum buffers or moments of another algorithm mean nothing to this one
        lines.append(
            f"resume: optimizer {old} -> {type(opt).__name__} (from the config); its state starts afresh"
        )
    else:
        lines += _group_changes(
            restored, configured, [k for k in opt.defaults if k not in _NOT_HYPERPARAMETERS]
        )
    for group, entries in zip(restored, configured, strict=True):
        params = group["params"]
        group.clear()
        group.update(_entries(entries))
        group["params"] = params
    return lines


def _base_lr(group: dict[str, Any]) -> Any:
    return group.get("initial_lr", group.get("lr"))


def _group_changes(
    restored: list[dict[str, Any]], configured: list[dict[str, Any]], keys: list[str]
) -> list[str]:
    """``resume: <key> <old> -> <new> (from the config)`` for each hyperparameter that differs; one line
    when every group that changed changed alike, else one per group."""
    lines = []
    for key in ["lr", *keys]:
        changed = []
        for index, (old_group, new_group) in enumerate(zip(restored, configured, strict=True)):
            old = _base_lr(old_group) if key == "lr" else old_group.get(key)
            new = _base_lr(new_group) if key == "lr" else new_group.get(key)
            if not _same(old, new):
                changed.append((new_group.get("name", index), _fmt(old), _fmt(new)))
        if len({(old, new) for _, old, new in changed}) == 1:
            _, old, new = changed[0]
            lines.append(f"resume: {key} {old} -> {new} (from the config)")
        else:
            lines += [
                f"resume: {key} {old} -> {new} in group {name!r} (from the config)"
                for name, old, new in changed
            ]
    return lines


def _reset(scheduler: Any, fresh: dict[str, Any], saved_state: dict[str, Any] | None) -> None:
    """Put ``scheduler`` back to the config's state at step 0. Lightning loaded the checkpoint's state
    into it, possibly a state of another class: the entries only that state has go."""
    for key in set(saved_state or ()) - set(fresh):
        vars(scheduler).pop(key, None)
    scheduler.load_state_dict(copy.deepcopy(fresh))


def _continue_at(scheduler: Any, step: int) -> None:
    """Step ``scheduler`` (at step 0) to ``step``, as the uninterrupted run stepped it."""
    if step <= 0:
        return
    with warnings.catch_warnings():
        # the optimizer has not stepped in this process yet: torch's order warning does not apply
        warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
        if isinstance(scheduler, _CLOSED_FORM):  # one step, from where the counter says
            scheduler.last_epoch += step - 1
            scheduler._step_count += step - 1
            scheduler.step()
            return
        for _ in range(step):
            scheduler.step()


def _schedule_changes(
    scheduler: Any,
    fresh: dict[str, Any],
    saved_state: dict[str, Any] | None,
    saved: dict[str, Any] | None,
    interval: str,
    unit: str,
) -> tuple[list[str], list[str]]:
    """(lines naming the config's changes to this schedule, refit clauses for the run-length line).

    ``fresh`` is the config's state before it was fitted to the run: an argument that fitting changed
    (``total_steps: null``, a ``warmup_fraction``'s ``warmup_steps``) follows the run; any other that
    differs from the checkpoint's was changed in the config."""
    name = type(scheduler).__name__
    if saved_state is None:
        return [f"resume: lr_scheduler none -> {name} (from the config)"], []
    if saved is not None and saved.get("class") != _qualname(type(scheduler)):
        return [f"resume: lr_scheduler {_short(saved['class'])} -> {name} (from the config)"], []
    fitted = scheduler.state_dict()
    arguments = [key for key in fitted if key not in _PROGRESS_KEYS]
    if set(arguments) != set(saved_state) - _PROGRESS_KEYS:
        return [f"resume: lr_scheduler -> {name} (from the config; the checkpoint's has other arguments)"], []
    lines = []
    if saved is not None and saved.get("interval") != interval:
        lines.append(f"resume: scheduler_interval {saved.get('interval')} -> {interval} (from the config)")
    follows_run = {key for key in arguments if not _same(fresh.get(key), fitted[key])}
    changed = [key for key in arguments if not _same(saved_state[key], fitted[key])]
    lines += [
        f"resume: {name} {key} {_fmt(saved_state[key])} -> {_fmt(fitted[key])} (from the config)"
        for key in changed
        if key not in follows_run
    ]
    warmup = (
        f"warmup {fitted.get('warmup_steps')}"
        if "warmup_steps" in changed and "warmup_steps" in follows_run
        else ""
    )
    if "total_steps" in changed and "total_steps" in follows_run:
        refit = [f"{name} refitted to {fitted['total_steps']} {unit}" + (f" ({warmup})" if warmup else "")]
    else:
        refit = [f"{name} {warmup.replace('warmup', 'warmup refitted to')} {unit}"] if warmup else []
    return lines, refit


def _run_length_lines(trainer: L.Trainer, record: RunRecord | None, refits: list[str]) -> list[str]:
    """``resume: run length 2 -> 4 epochs, WarmupCosineLR refitted to 4 epochs``, or the refits alone."""
    tail = "".join(f", {clause}" for clause in refits)
    if record is not None and (record.max_epochs, record.max_steps) != (
        trainer.max_epochs,
        trainer.max_steps,
    ):
        old: int | str | None
        new: int | str | None
        if record.max_steps == trainer.max_steps == -1:
            old, new, unit = _length(record.max_epochs), _length(trainer.max_epochs), "epochs"
        else:
            steps = run_length(trainer, "step")
            old, new, unit = _length(record.run_steps), _length(steps), "optimizer steps"
        return [f"resume: run length {old} -> {new} {unit}{tail}"]
    return [f"resume: {clause} (the run's length with this config)" for clause in refits]


def _length(value: float | None) -> str:
    """A run length for the console: a count, or ``endless`` (``None``, -1 or ``inf``)."""
    return str(int(value)) if value is not None and math.isfinite(value) and value >= 0 else "endless"


def _refuse_new_epoch_shape(record: RunRecord, now: RunRecord, ckpt_path: str) -> None:
    """A mid-epoch checkpoint continues its epoch only with the epoch's batch size, processes, data and accumulation."""
    if not record.mid_epoch:
        return
    changed = [
        f"{label} {getattr(record, key)} -> {getattr(now, key)}"
        for key, label in _EPOCH_SHAPE
        if None not in (getattr(record, key), getattr(now, key)) and getattr(record, key) != getattr(now, key)
    ]
    if not changed:
        return
    raise ConfigError(
        f"checkpoint {ckpt_path!r} was written mid-epoch (after {record.batches_done} of the "
        f"{record.batches_per_epoch} batches of epoch {record.epochs_done}), and the config changes its "
        f"{', '.join(changed)}: the rest of that epoch cannot follow the order it started in. Resume from "
        "a checkpoint written at an epoch end (the epoch's best or last checkpoint), or finish the "
        "epoch with the checkpoint's values and change them then"
    )


def _steps_per_epoch(trainer: L.Trainer) -> int | None:
    batches = trainer.num_training_batches
    return math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else None


def _train_loader(trainer: L.Trainer) -> Any:
    loader = trainer.train_dataloader
    return loader if not isinstance(loader, (list, tuple, dict)) else None


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(qualname: str) -> str:
    return qualname.rsplit(".", 1)[-1]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    try:
        return bool(a == b)
    except (TypeError, ValueError, RuntimeError):
        return a is b


def _fmt(value: Any) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return str(value)
