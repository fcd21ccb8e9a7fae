"""What makes two runs comparable, as the run's hyperparameters: the record ``lit-dl fit`` logs.

Lightning logs the model's constructor arguments when fit starts, with ``hp_metric = -1`` until a
metric is logged (``TensorBoardLogger(default_hp_metric=True)``). The optimizer and scheduler are injected callables, not among those arguments, so an LR
sweep's runs looked identical in TensorBoard's HPARAMS tab. :class:`RunHparams` logs one record per
run instead, with what varies between runs: the recipe (its config files), the model's arguments
(Lightning's bookkeeping such as ``_instantiator`` left out), the optimizer class and its
hyperparameters, the scheduler, the batch size per device and per optimizer step, epochs,
precision, devices and seed; ``hp_metric`` is the best value of the checkpoint's monitor, updated at
every epoch and when fit ends. A resumed run starts from the best its checkpoint restored, so
the value is the whole run's. All through ``Logger.log_hyperparams(params, metrics)`` and
``log_metrics``, so ``hparams.yaml`` (and any logger) gets the record too.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lit_dl._lightning import disable_default_hp_metric
from lit_dl.errors import ConfigError
from lit_dl.models.batch_lr import per_device_batch_size, trainer_global_batch_size

__all__ = ["RunHparams", "run_hparams"]

# Optimizer defaults that choose an implementation, not the optimisation: the same run either way.
_IMPLEMENTATION = frozenset({"foreach", "fused", "capturable", "differentiable"})
# Scheduler constructor arguments that are not the schedule.
_NOT_SCHEDULE = frozenset({"optimizer", "last_epoch", "verbose"})


def _scalar(value: Any) -> bool:
    return isinstance(value, (bool, int, float, str))


def _value(value: Any) -> Any:
    """A value TensorBoard can show: numbers, strings and booleans as they are, the rest as text."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if _scalar(value):
        return value
    if isinstance(value, (tuple, list)) and all(_scalar(v) for v in value):
        return str(list(value))
    return str(value)


def _optimizer_record(trainer: L.Trainer) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for i, optimizer in enumerate(trainer.optimizers):
        key = "optimizer" if i == 0 else f"optimizer_{i}"
        record[key] = type(optimizer).__name__
        for name, value in optimizer.defaults.items():  # the constructor's arguments
            if name not in _IMPLEMENTATION and value is not None:
                record[f"{key}/{name}"] = _value(value)
    return record


def _scheduler_record(trainer: L.Trainer) -> dict[str, Any]:
    configs = trainer.lr_scheduler_configs
    if not configs:
        return {"lr_scheduler": "none"}
    record: dict[str, Any] = {}
    for i, config in enumerate(configs):
        key = "lr_scheduler" if i == 0 else f"lr_scheduler_{i}"
        scheduler = config.scheduler
        record[key] = type(scheduler).__name__
        record[f"{key}/interval"] = config.interval
        # torch's schedulers (and lit_dl's) keep their constructor arguments as attributes of that name
        for name in inspect.signature(type(scheduler)).parameters:
            value = getattr(scheduler, name, None)
            if name not in _NOT_SCHEDULE and value is not None and _scalar(value):
                record[f"{key}/{name}"] = value
    return record


def _batch_record(trainer: L.Trainer, model: L.LightningModule) -> dict[str, Any]:
    try:
        per_device = per_device_batch_size(model, "linear")
    except ConfigError:  # neither the data module nor the loader says its batch size
        return {}
    return {"batch_size": per_device, "global_batch_size": trainer_global_batch_size(trainer, per_device)}


def _own_hparams(hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """The constructor arguments, without Lightning's bookkeeping (``_instantiator``, ``_class_path``)."""
    return {k: _value(v) for k, v in (hparams or {}).items() if not str(k).startswith("_")}


def _monitoring_checkpoint(trainer: L.Trainer) -> Any:
    """The first checkpoint callback that monitors a metric, or ``None``."""
    return next((c for c in trainer.checkpoint_callbacks if getattr(c, "monitor", None)), None)


def run_hparams(
    trainer: L.Trainer,
    model: L.LightningModule,
    config_files: Sequence[str | PathLike[str]] = (),
    seed: int | None = None,
) -> dict[str, Any]:
    """The record of a run whose optimizers are built (flat names, TensorBoard-ready values).

    Args:
        trainer: The Trainer, from ``on_fit_start`` on (its optimizers and schedulers built).
        model: The module: its class and constructor arguments.
        config_files: The ``--config`` files, in order: ``recipe`` is their names joined by ``+``.
        seed: The run's ``seed_everything``.
    """
    record: dict[str, Any] = {}
    if config_files:
        record["recipe"] = " + ".join(Path(str(path)).name for path in config_files)
    record["model"] = type(model).__name__
    record.update(_own_hparams(model.hparams))
    datamodule = getattr(trainer, "datamodule", None)
    if isinstance(datamodule, L.LightningDataModule):
        record["data"] = type(datamodule).__name__
        record.update({f"data/{k}": v for k, v in _own_hparams(datamodule.hparams).items()})
    record.update(_optimizer_record(trainer))
    record.update(_scheduler_record(trainer))
    record.update(_batch_record(trainer, model))
    record.update(
        {
            "max_epochs": trainer.max_epochs if trainer.max_epochs is not None else -1,
            "max_steps": trainer.max_steps,
            "precision": str(trainer.precision),
            "devices": trainer.num_devices,
            "num_nodes": trainer.num_nodes,
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
        }
    )
    if seed is not None and not isinstance(seed, bool):
        record["seed"] = int(seed)
    checkpoint = _monitoring_checkpoint(trainer)
    if checkpoint is not None:
        record["monitor"] = str(checkpoint.monitor)
    return record


class RunHparams(L.Callback):
    """Logs :func:`run_hparams` when fit starts, with ``hp_metric`` the best value of the checkpoint's
    monitor, and each new best when the next epoch starts and when fit ends (NaN until there is one);
    rank 0.

    The best is the whole run's: a resumed run writes into a new run folder, where Lightning's
    checkpoint callback starts its own best afresh (its ``dirpath`` changed), so the best the
    resumed checkpoint recorded is read from it and kept. TensorBoard shows the first HPARAMS session
    of a run folder: the TensorBoard loggers are told not to write Lightning's own (the model's
    arguments alone, ``hp_metric = -1``) before this one. ``lit-dl fit`` adds it to the Trainer's
    callbacks.

    Args:
        config_files: The ``--config`` files of the run (the ``recipe`` entry).
        seed: The run's ``seed_everything``.
    """

    def __init__(self, config_files: Sequence[str | PathLike[str]] = (), seed: int | None = None) -> None:
        self.config_files = [str(path) for path in config_files]
        self.seed = seed
        self.record: dict[str, Any] = {}
        self._restored_best: float | None = None
        self._logged_best: float | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Before configure_optimizers (whose LR-scaling record is also logged without metrics) and
        # before Lightning logs the model's arguments.
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                disable_default_hp_metric(logger)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        callback = _monitoring_checkpoint(trainer)
        state = (checkpoint.get("callbacks") or {}).get(callback.state_key) if callback is not None else None
        if not isinstance(state, dict) or callback is None:
            return
        score = state.get("best_model_score")
        if score is not None and state.get("monitor") == callback.monitor:
            self._restored_best = float(score)

    def best(self, trainer: L.Trainer) -> float | None:
        """The best value of the checkpoint callback's monitor over the whole run, or ``None``."""
        callback = _monitoring_checkpoint(trainer)
        if callback is None:
            return None
        score = callback.best_model_score
        values = [float(v) for v in (self._restored_best, score) if v is not None and math.isfinite(float(v))]
        if not values:
            return None
        return min(values) if getattr(callback, "mode", "min") == "min" else max(values)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After the checkpoint is read (a resumed run's best) and the optimizers are built.
        if not trainer.is_global_zero or not trainer.loggers:
            return
        self.record = run_hparams(trainer, pl_module, self.config_files, self.seed)
        self._logged_best = self.best(trainer)
        metrics = {"hp_metric": self._logged_best if self._logged_best is not None else math.nan}
        for logger in trainer.loggers:
            if "metrics" in inspect.signature(logger.log_hyperparams).parameters:  # TensorBoard's
                logger.log_hyperparams(self.record, metrics=metrics)
            else:  # CSVLogger's takes the parameters alone
                logger.log_hyperparams(self.record)

    def _log_best(self, trainer: L.Trainer) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        best = self.best(trainer)
        if best is None or best == self._logged_best:
            return
        self._logged_best = best
        for logger in trainer.loggers:
            logger.log_metrics({"hp_metric": best}, step=trainer.global_step)

    # Lightning runs the checkpoint callbacks' epoch-end hooks after every other callback's, so the
    # epoch's best is read when the next epoch starts, and the last epoch's when fit ends.
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_best(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._log_best(trainer)
