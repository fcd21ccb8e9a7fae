"""The end of ``lit-dl fit``: which checkpoint is tested, and a warning when the run ended far from its best.

Fit tests the best checkpoint, so a run whose validation accuracy fell back to chance after a good
epoch (a too high LR without BatchNorm: 0.90, then 0.10 for the rest) would print a healthy test
accuracy and exit 0. :func:`fit_summary` names the tested checkpoint (its epoch and monitored value)
next to the last epoch's, and :func:`fit_warning` says when the two are far apart.
"""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L

from lit_dl.checkpointing.loading import load_checkpoint

__all__ = ["FAR_FROM_BEST", "MonitorSummary", "fit_warning", "monitor_summary"]

FAR_FROM_BEST = 0.1
"""The last epoch counts as far from the best when it is worse by more than this fraction of the best."""


class MonitorSummary:
    """The checkpoint callback's monitor at its best epoch and at the last one.

    Attributes:
        monitor: The monitored metric (``val/acc``).
        mode: ``"max"`` or ``"min"``.
        best: Its best value; ``best_epoch`` the epoch of the best checkpoint, ``best_path`` its file.
        last: Its value at the last validation of the fit (``None`` when there was none).
        chance: For an accuracy of a classifier with ``n`` classes, ``1 / n``; else ``None``.
    """

    def __init__(
        self,
        monitor: str,
        mode: str,
        best: float,
        best_epoch: int | None,
        best_path: str,
        last: float | None,
        last_epoch: int,
        chance: float | None,
    ) -> None:
        self.monitor, self.mode = monitor, mode
        self.best, self.best_epoch, self.best_path = best, best_epoch, best_path
        self.last, self.last_epoch, self.chance = last, last_epoch, chance

    def testing_line(self) -> str:
        """``Testing the best checkpoint epoch=3-step=76.ckpt (epoch 3, val/acc 0.9722) on the test split;
        the last epoch (29) ended at val/acc 0.9667``."""
        epoch = f"epoch {self.best_epoch}, " if self.best_epoch is not None else ""
        text = (
            f"Testing the best checkpoint {Path(self.best_path).name} ({epoch}{self.monitor} {self.best:.4g}) "
            "on the test split"
        )
        if self.last is not None:
            text += f"; the last epoch ({self.last_epoch}) ended at {self.monitor} {self.last:.4g}"
        return text

    def worse_by(self) -> float:
        """How much worse the last value is than the best, as a fraction of the best (0: as good)."""
        if self.last is None or not math.isfinite(self.best):
            return 0.0
        gap = self.best - self.last if self.mode == "max" else self.last - self.best
        if not math.isfinite(gap):
            return math.inf
        return max(0.0, gap) / max(abs(self.best), 1e-12)


def monitor_summary(trainer: L.Trainer, model: L.LightningModule) -> MonitorSummary | None:
    """The summary of the fit's checkpoint callback, or ``None`` when it keeps no best checkpoint."""
    callback = trainer.checkpoint_callback
    monitor = getattr(callback, "monitor", None)
    path = getattr(callback, "best_model_path", "")
    score = getattr(callback, "best_model_score", None)
    if callback is None or not monitor or not path or score is None:
        return None
    epoch = None
    if Path(path).is_file():
        epoch = load_checkpoint(path, mmap=True).get("epoch")
    value = trainer.callback_metrics.get(monitor)
    last = float(value) if value is not None else None
    classes = getattr(model, "num_classes", None)
    chance = 1.0 / classes if isinstance(classes, int) and classes > 1 and monitor.endswith("acc") else None
    mode = getattr(callback, "mode", "min")
    return MonitorSummary(monitor, mode, float(score), epoch, path, last, trainer.current_epoch - 1, chance)


def fit_warning(summary: MonitorSummary) -> str | None:
    """The warning for a run whose last epoch is far from its best (:data:`FAR_FROM_BEST`), or ``None``."""
    worse = summary.worse_by()
    if summary.last is None or worse <= FAR_FROM_BEST:
        return None
    at_chance = (
        f", back at chance level (1/{round(1 / summary.chance)} = {summary.chance:.4g})"
        if summary.chance is not None and summary.last <= 1.5 * summary.chance
        else ""
    )
    where = f" at epoch {summary.best_epoch}" if summary.best_epoch is not None else ""
    return (
        f"the run ended far from its best: {summary.monitor} {summary.last:.4g} at the last epoch "
        f"({summary.last_epoch}){at_chance}, against {summary.best:.4g}{where}; the test metrics are the best "
        "checkpoint's, not the final weights' (a diverged or collapsed run: lower the LR, add warmup or "
        "normalisation)"
    )
