"""The callback that follows a trial's metric: each validation's value, and the run folder."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L

from lit_dl.errors import ConfigError

__all__ = ["TrialMetric"]


class TrialMetric(L.Callback):
    """Records the sweep's metric after every validation (``values[i]`` after the ``i``-th) and the
    trial's run folder, and stops the trial with a :class:`~lit_dl.errors.ConfigError` at the first
    validation (the sanity check included) that does not log the metric. (TensorBoard's HPARAMS tab
    shows each trial's record with ``hp_metric``, the best of its checkpoint's monitor:
    :class:`lit_dl.cli.run_hparams.RunHparams`.)

    Args:
        metric: The logged name (``val/acc``).
        direction: ``maximize`` or ``minimize``: which of the values is the best.
    """

    def __init__(self, metric: str, direction: str) -> None:
        self.metric = metric
        self.direction = direction
        self.values: list[float] = []
        self.run_dir: Path | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = trainer.logger
        log_dir = logger.log_dir if logger is not None else None
        self.run_dir = Path(log_dir if log_dir is not None else trainer.default_root_dir)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ConfigError(f"the sweep's metric {self.metric!r} is never logged; logged metrics: {logged}")
        if trainer.sanity_checking:
            return
        self.values.append(float(value))

    @property
    def best(self) -> float:
        """The best finite value so far (NaN if none)."""
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return math.nan
        return max(finite) if self.direction == "maximize" else min(finite)
