"""The run folder's ``config.yaml`` records what trained, the values Lightning's tuners found included."""

from __future__ import annotations

import copy
import os
from typing import Any, NamedTuple

import lightning as L
from lightning.pytorch.callbacks import BatchSizeFinder, LearningRateFinder, SpikeDetection
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_hasattr

from lit_dl._lightning import trainer_callbacks
from lit_dl.cli.extensions import entry_class

__all__ = ["SaveRunConfig", "TunedValue", "tuned_values"]

_TUNERS = (LearningRateFinder, BatchSizeFinder)


class TunedValue(NamedTuple):
    """A value a tuner changed: the config ``key`` it belongs to, the configured and the found value."""

    key: str
    configured: Any
    found: Any
    tuner: str


def _callback_entries(config: Any) -> list[Any]:
    value = config.get("trainer.callbacks") if hasattr(config, "get") else None
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _has(config: Any, key: str) -> bool:
    try:
        return key in config
    except (KeyError, TypeError):
        return False


def _config_key(config: Any, attribute: str, tuner: type) -> str | None:
    """Where in the config the attribute a tuner sets is configured, or ``None``."""
    if (
        tuner is LearningRateFinder
        and attribute == "lr"
        and _has(config, "model.init_args.optimizer.init_args.lr")
    ):
        return "model.init_args.optimizer.init_args.lr"  # ClassificationTask.lr: the optimizer's
    sections = ("data", "model") if tuner is BatchSizeFinder else ("model", "data")
    for section in sections:
        key = f"{section}.init_args.{attribute}"
        if _has(config, key):
            return key
    return None


def tuned_values(config: Any, model: L.LightningModule) -> tuple[list[TunedValue], list[str]]:
    """The values the config's ``LearningRateFinder`` / ``BatchSizeFinder`` changed, read after they ran.

    Returns:
        The changed values, and a warning for each one the config has no place for.
    """
    found: list[TunedValue] = []
    unrecorded: list[str] = []
    for entry in _callback_entries(config):
        cls = entry_class(entry)
        tuner = next((t for t in _TUNERS if cls is not None and issubclass(cls, t)), None)
        if tuner is None:
            continue
        init_args = entry.get("init_args") or {}
        if tuner is LearningRateFinder:
            attribute = init_args.get("attr_name") or next(
                (a for a in ("lr", "learning_rate") if lightning_hasattr(model, a)), "lr"
            )
        else:
            attribute = init_args.get("batch_arg_name") or "batch_size"
        if not lightning_hasattr(model, attribute):
            continue
        value = lightning_getattr(model, attribute)
        key = _config_key(config, attribute, tuner)
        if key is None:
            unrecorded.append(
                f"{tuner.__name__} set {attribute}={value!r}, which the config has no option for: the run "
                f"folder's config.yaml does not record it"
            )
            continue
        if value != config[key]:
            found.append(TunedValue(key, config[key], value, tuner.__name__))
    return found, unrecorded


class SaveRunConfig(SaveConfigCallback):
    """LightningCLI's ``SaveConfigCallback`` that keeps the run folder's ``config.yaml`` what trained.

    - At setup, as Lightning's: the parsed config, before training.
    - After Lightning's tuners ran (``LearningRateFinder`` and ``BatchSizeFinder`` search in their
      ``on_fit_start``), the values they set replace the configured ones (the task's ``lr`` is
      ``model.init_args.optimizer.init_args.lr``; ``batch_size`` is the data module's) and the tuners
      are left out of the file's callbacks: rerunning the file trains the same run without searching
      again (a batch-size search depends on the memory free at the time).
    - ``SpikeDetection`` without ``exclude_batches_path`` writes its ``skip_batches.json`` into the run
      folder (Lightning's default is ``trainer.default_root_dir``, shared by every run).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._config_path: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.already_saved and self.save_to_log_dir:
            log_dir = trainer.log_dir  # broadcasts: called on every rank, as Lightning's setup does
            if log_dir is not None:
                self._config_path = os.path.join(log_dir, self.config_filename)
                for callback in trainer_callbacks(trainer):
                    if isinstance(callback, SpikeDetection) and callback.exclude_batches_path is None:
                        callback.exclude_batches_path = os.path.join(log_dir, "skip_batches.json")
        super().setup(trainer, pl_module, stage)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Write the tuners' values into ``config.yaml`` (the tuners run before this callback)."""
        found, unrecorded = tuned_values(self.config, pl_module)
        for warning in unrecorded:
            rank_zero_warn(warning)
        if not found:
            return
        config = copy.deepcopy(self.config)
        for value in found:
            config[value.key] = value.found
        config["trainer.callbacks"] = [
            entry
            for entry in _callback_entries(config)
            if not any(issubclass(entry_class(entry) or object, tuner) for tuner in _TUNERS)
        ]
        self.config = config
        if trainer.is_global_zero and self._config_path is not None:
            self.parser.save(
                config, self._config_path, skip_none=False, overwrite=True, multifile=self.multifile
            )
        changes = ", ".join(f"{v.key}={v.found!r} ({v.tuner}; configured {v.configured!r})" for v in found)
        rank_zero_info(
            f"config.yaml records the tuned values: {changes}; the tuners are left out of it, so rerunning "
            f"it trains this run"
        )
