"""Linear warmup followed by a main schedule (cosine annealing or step decay), with a minimum LR.

A large LR applied to freshly initialised weights can throw training off in the first steps;
ramping it up linearly over a few hundred steps avoids that and is what makes the linear scaling
rule work at large batch sizes (Goyal et al., 2017, "Accurate, Large Minibatch SGD", §2.2
"gradual warmup"). After the warmup the LR follows cosine annealing (Loshchilov & Hutter, 2017,
"SGDR") or step decay (He et al., 2016), and never falls below ``min_lr``.

The schedules are closed-form in the scheduler's step counter ``last_epoch``, so a scheduler
restored from a checkpoint (``load_state_dict``) continues exactly where it stopped.

A "step" here is one call of ``scheduler.step()``: an optimizer step when the task's
``scheduler_interval`` is ``"step"``, an epoch when it is ``"epoch"``. From YAML::

    model:
      init_args:
        scheduler_interval: step
        lr_scheduler:
          class_path: lit_dl.optim.WarmupCosineLR
          init_args: {warmup_fraction: 0.1, min_lr: 1.0e-5}

``warmup_fraction`` sizes the warmup as a fraction of the schedule, so a recipe composed with another
data module, batch size or number of devices keeps its shape; ``warmup_steps`` gives a fixed count.
"""

from __future__ import annotations

import abc
import math

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lit_dl.errors import ConfigError

__all__ = ["WarmupCosineLR", "WarmupLR", "WarmupStepLR"]


class WarmupLR(LRScheduler, abc.ABC):
    """Base of the warmup schedules: linear warmup, then :meth:`main_lr` of the subclass.

    During the first ``warmup_steps`` steps the LR of each group goes linearly from
    ``warmup_start_factor * base_lr`` (at step 0) up to ``base_lr`` (reached at step ``warmup_steps``).

    Args:
        optimizer: The wrapped optimizer; each group's current ``lr`` is its base LR.
        warmup_steps: Length of the linear warmup in scheduler steps; 0 turns it off.
        warmup_fraction: Instead of ``warmup_steps``: the warmup's length as a fraction of
            ``total_steps`` (the run's length when that is unset), in ``[0, 1)``; rounded to whole
            steps, at least one when above 0. It follows the run: a longer run has a longer warmup.
        warmup_start_factor: Fraction of the base LR used at step 0, in ``[0, 1]``.
        min_lr: Floor of the LR after the warmup; at most every group's base LR.
        total_steps: Length of the whole schedule (warmup included) in scheduler steps. ``None``
            means the whole run: :class:`~lit_dl.models.ClassificationTask` fills it in at train start from the
            Trainer through :meth:`fit_to_run`.
        last_epoch: Index of the last step taken (``-1``: start fresh), as in every torch scheduler.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        min_lr: float = 0.0,
        total_steps: int | None = None,
        last_epoch: int = -1,
        warmup_fraction: float | None = None,
    ) -> None:
        if warmup_fraction is not None and not 0.0 <= warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {warmup_fraction!r}")
        if warmup_fraction is not None and warmup_steps != 0:
            raise ConfigError(
                f"give one of warmup_steps (a count) and warmup_fraction (a fraction of the schedule), got "
                f"warmup_steps={warmup_steps!r}, warmup_fraction={warmup_fraction!r}; set the other to "
                "0 / null"
            )
        if warmup_fraction is not None and total_steps is not None:
            warmup_steps = _fraction_of(warmup_fraction, total_steps)
        if warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
        if not 0.0 <= warmup_start_factor <= 1.0:
            raise ConfigError(f"warmup_start_factor must be in [0, 1], got {warmup_start_factor!r}")
        if min_lr < 0:
            raise ConfigError(f"min_lr must be >= 0, got {min_lr!r}")
        if total_steps is not None and warmup_steps >= total_steps:
            raise ConfigError(
                f"warmup_steps={warmup_steps!r} is longer than the schedule: it must be shorter than "
                f"total_steps={total_steps!r}"
            )
        for index, group in enumerate(optimizer.param_groups):
            base = group.get("initial_lr", group["lr"])
            if min_lr > base:
                raise ConfigError(
                    f"min_lr={min_lr!r} is above the base LR {float(base)!r} of parameter group "
                    f"{group.get('name', index)!r}; use min_lr <= lr"
                )
        self.warmup_steps = int(warmup_steps)
        self.warmup_fraction = None if warmup_fraction is None else float(warmup_fraction)
        self.warmup_start_factor = float(warmup_start_factor)
        self.min_lr = float(min_lr)
        self.total_steps = None if total_steps is None else int(total_steps)
        super().__init__(optimizer, last_epoch)

    def fit_to_run(self, run_length: int | float, unit: str = "steps") -> None:
        """Check the warmup against a run of ``run_length`` scheduler steps; fill ``total_steps`` if unset.

        Raises:
            ConfigError: the warmup is not shorter than the run, or the run is endless and
                ``total_steps`` is unset.
        """
        if math.isinf(run_length):
            if self.total_steps is None:
                raise ConfigError(
                    f"{type(self).__name__} needs total_steps for a run without max_epochs/max_steps"
                )
            return
        if self.warmup_fraction is not None and self.total_steps is None:
            self.warmup_steps = _fraction_of(self.warmup_fraction, run_length)
        if self.warmup_steps >= run_length:
            raise ConfigError(
                f"warmup_steps={self.warmup_steps!r} is longer than the run: the run has {int(run_length)} "
                f"{unit}; shorten the warmup or lengthen the run"
            )
        if self.total_steps is None:
            self.total_steps = int(run_length)

    @abc.abstractmethod
    def main_lr(self, base_lr: float | Tensor, step: int) -> float | Tensor:
        """LR of a group with base LR ``base_lr`` at ``step`` scheduler steps after the warmup ended.

        Abstract: a schedule without it cannot be built.
        """

    def main_steps(self) -> int:
        """Length of the schedule after the warmup, in scheduler steps; needs ``total_steps``."""
        if self.total_steps is None:
            raise RuntimeError(
                f"{type(self).__name__}.total_steps is unset: pass total_steps or call fit_to_run(run_length)"
            )
        return self.total_steps - self.warmup_steps

    def get_lr(self) -> list[float | Tensor]:
        t = self.last_epoch
        if self.warmup_fraction and self.total_steps is None:
            # The warmup's length waits for the run's; its first value does not depend on it.
            if t == 0:
                return [base * self.warmup_start_factor for base in self.base_lrs]
            self.main_steps()  # raises: total_steps is unset
        if t < self.warmup_steps:
            factor = self.warmup_start_factor + (1.0 - self.warmup_start_factor) * t / self.warmup_steps
            return [base * factor for base in self.base_lrs]
        return [max(self.min_lr, self.main_lr(base, t - self.warmup_steps)) for base in self.base_lrs]


def _fraction_of(fraction: float, total: int | float) -> int:
    """``fraction`` of ``total`` steps, rounded; at least one step when ``fraction`` is above 0."""
    return max(1, round(fraction * total)) if fraction > 0 else 0


class WarmupCosineLR(WarmupLR):
    """Linear warmup, then cosine annealing from the base LR down to ``min_lr`` at ``total_steps``.

    After the warmup: ``lr = min_lr + (base_lr - min_lr) · ½(1 + cos(π · s / (total_steps - warmup_steps)))``
    for ``s`` steps after the warmup; ``min_lr`` from ``total_steps`` on (Loshchilov & Hutter, 2017).
    Arguments as in :class:`WarmupLR`.
    """

    def main_lr(self, base_lr: float | Tensor, step: int) -> float | Tensor:
        if step == 0:  # the start of the cosine does not depend on its length (total_steps may be unset)
            return base_lr
        progress = min(1.0, step / self.main_steps())
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupStepLR(WarmupLR):
    """Linear warmup, then the LR multiplied by ``gamma`` at each decay point, floored at ``min_lr``.

    The decay points are either every ``step_size`` steps, or the fractions ``decay_at`` of the main
    schedule (the steps after the warmup), which follow the run however long it is: ``[0.5, 0.75]`` is
    the classic ResNet shape (He et al., 2016: x0.1 at 32k and 48k of 64k iterations).

    Args:
        optimizer: The wrapped optimizer.
        step_size: Scheduler steps between two decays, counted from the end of the warmup.
        gamma: Multiplicative decay factor, in ``(0, 1]``.
        warmup_steps: Length of the linear warmup in scheduler steps; 0 turns it off.
        warmup_start_factor: Fraction of the base LR used at step 0, in ``[0, 1]``.
        min_lr: Floor of the LR after the warmup.
        total_steps: Length of the run in scheduler steps; ``None``: filled in from the Trainer.
        last_epoch: Index of the last step taken (``-1``: start fresh).
        decay_at: Instead of ``step_size``: increasing fractions in ``(0, 1)`` of the steps after the
            warmup at which the LR is multiplied by ``gamma``.
        warmup_fraction: Instead of ``warmup_steps``: the warmup as a fraction of the schedule
            (see :class:`WarmupLR`).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int | None = None,
        gamma: float = 0.1,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        min_lr: float = 0.0,
        total_steps: int | None = None,
        last_epoch: int = -1,
        decay_at: list[float] | None = None,
        warmup_fraction: float | None = None,
    ) -> None:
        if (step_size is None) == (decay_at is None):
            raise ConfigError(
                f"give exactly one of step_size (steps between decays) and decay_at (fractions of the run), "
                f"got step_size={step_size!r}, decay_at={decay_at!r}"
            )
        if step_size is not None and step_size < 1:
            raise ConfigError(f"step_size must be >= 1, got {step_size!r}")
        if decay_at is not None:
            points = [float(f) for f in decay_at]
            if not points or any(not 0.0 < f < 1.0 for f in points) or points != sorted(set(points)):
                raise ConfigError(
                    f"decay_at must be increasing fractions of the run in (0, 1), got {decay_at!r}"
                )
            decay_at = points
        if not 0.0 < gamma <= 1.0:
            raise ConfigError(f"gamma must be in (0, 1], got {gamma!r}")
        self.step_size = None if step_size is None else int(step_size)
        self.decay_at = decay_at
        self.gamma = float(gamma)
        super().__init__(
            optimizer, warmup_steps, warmup_start_factor, min_lr, total_steps, last_epoch, warmup_fraction
        )

    def main_lr(self, base_lr: float | Tensor, step: int) -> float | Tensor:
        if self.step_size is not None:
            return base_lr * self.gamma ** (step // self.step_size)
        if step == 0:  # the start does not depend on the run's length (total_steps may be unset)
            return base_lr
        main = self.main_steps()
        decays = sum(step >= f * main for f in self.decay_at or ())  # the first step at or past each fraction
        return base_lr * self.gamma**decays
