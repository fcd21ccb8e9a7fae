"""The one-cycle schedule with its peak at the optimizer's LR and its length taken from the run."""

from __future__ import annotations

import math

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lit_dl.errors import ConfigError

__all__ = ["RunLengthOneCycleLR"]


class RunLengthOneCycleLR(LRScheduler):
    """One cycle (Smith & Topin, 2019, "Super-Convergence", Sec. 3): the LR rises from
    ``lr / div_factor`` to the peak ``lr`` over the first ``pct_start`` of the run, then anneals to
    ``lr / (div_factor · final_div_factor)`` at its end, both with cosine shape.

    The same curve as ``torch.optim.lr_scheduler.OneCycleLR(max_lr=lr, cycle_momentum=False)``, with
    two differences that make it follow the run:

    - the peak is each group's LR when the scheduler is built, not a separate ``max_lr``: the task's
      ``lr_scaling`` scales the peak, and the LR the run prints is the one it uses;
    - ``total_steps=None`` (the default) means the whole run: :class:`~lit_dl.models.ClassificationTask`
      fills it in from the Trainer (:meth:`fit_to_run`), so ``--trainer.max_epochs`` or a new batch size
      stretch the cycle instead of crashing ("Tried to step ... times") or never annealing.

    Past ``total_steps`` the LR stays at its final value. Momentum is not cycled.

    Args:
        optimizer: The wrapped optimizer; each group's ``lr`` is its peak.
        pct_start: Fraction of the run spent rising to the peak, in ``(0, 1)``.
        div_factor: The start LR is ``lr / div_factor`` (``>= 1``).
        final_div_factor: The final LR is the start LR divided by this (``>= 1``).
        total_steps: Length of the cycle in scheduler steps; ``None``: the whole run.
        last_epoch: Index of the last step taken (``-1``: start fresh).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        total_steps: int | None = None,
        last_epoch: int = -1,
    ) -> None:
        if not 0.0 < pct_start < 1.0:
            raise ConfigError(f"pct_start must be in (0, 1), got {pct_start!r}")
        if div_factor < 1.0:
            raise ConfigError(f"div_factor must be >= 1, got {div_factor!r}")
        if final_div_factor < 1.0:
            raise ConfigError(f"final_div_factor must be >= 1, got {final_div_factor!r}")
        if total_steps is not None and total_steps < 2:
            raise ConfigError(f"total_steps must be >= 2, got {total_steps!r}")
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)
        self.total_steps = None if total_steps is None else int(total_steps)
        super().__init__(optimizer, last_epoch)

    def fit_to_run(self, run_length: int | float, unit: str = "steps") -> None:
        """Fill ``total_steps`` with the run's length in scheduler steps, if it is unset.

        Raises:
            ConfigError: the run is endless (or shorter than 2 steps) and ``total_steps`` is unset.
        """
        if self.total_steps is not None:
            return
        if math.isinf(run_length):
            raise ConfigError("RunLengthOneCycleLR needs total_steps for a run without max_epochs/max_steps")
        if run_length < 2:
            raise ConfigError(f"RunLengthOneCycleLR needs a run of at least 2 {unit}, got {int(run_length)}")
        self.total_steps = int(run_length)

    def get_lr(self) -> list[float | Tensor]:
        t = self.last_epoch
        if self.total_steps is None:
            if t == 0:  # the start value does not depend on the length
                return [base / self.div_factor for base in self.base_lrs]
            raise RuntimeError(
                "RunLengthOneCycleLR.total_steps is unset: pass total_steps or call fit_to_run(run_length)"
            )
        # Phase ends as in torch's OneCycleLR: the peak at step pct_start·T - 1, the end at T - 1.
        peak_step = self.pct_start * self.total_steps - 1
        end_step = self.total_steps - 1
        lrs: list[float | Tensor] = []
        for peak in self.base_lrs:
            start = peak / self.div_factor
            final = start / self.final_div_factor
            if t <= peak_step:
                lrs.append(_cosine(start, peak, t / peak_step if peak_step > 0 else 1.0))
            else:
                lrs.append(_cosine(peak, final, min(1.0, (t - peak_step) / (end_step - peak_step))))
        return lrs


def _cosine(start: float | Tensor, end: float | Tensor, progress: float) -> float | Tensor:
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress 1)."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * progress) + 1.0)
