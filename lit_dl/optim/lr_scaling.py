"""The learning rate scaled with the global batch size.

Keeping the step per sample constant means a batch ``k`` times larger takes an LR ``k`` times larger:
the *linear scaling rule* of Goyal et al. (2017, "Accurate, Large Minibatch SGD: Training ImageNet
in 1 Hour", §2.1), there paired with a gradual warmup. The *square-root rule* keeps the variance of
the update constant instead (Krizhevsky, 2014, "One weird trick for parallelizing convolutional
neural networks"; Hoffer et al., 2017) and suits adaptive optimizers better.

Both are rules of thumb with a limit. SGD is stable only while the step stays below about
``2 / λ_max`` of the loss curvature, so past some batch size the scaled LR diverges or stops
buying anything: Goyal et al. see the rule break beyond ~8k images per batch on ImageNet, and
Shallue et al. (2019, "Measuring the Effects of Data Parallelism on Neural Network Training")
find that the steps-to-result curve flattens at a problem-dependent "maximal useful batch size".
``scripts/lr_batch_sweep.py`` shows where that happens on the digits.
"""

from __future__ import annotations

import math
from typing import Literal

from torch.optim import Optimizer

from lit_dl.errors import ConfigError

__all__ = [
    "LR_SCALING_RULES",
    "LRScaling",
    "check_lr_scaling",
    "global_batch_size",
    "lr_scale_factor",
    "scale_optimizer_lr",
]

LRScaling = Literal["none", "linear", "sqrt"]

LR_SCALING_RULES = {
    "none": lambda ratio: 1.0,
    "linear": lambda ratio: ratio,
    "sqrt": math.sqrt,
}
"""``rule(global_batch / base_batch) -> LR multiplier``."""


def global_batch_size(
    per_device_batch_size: int, num_devices: int = 1, num_nodes: int = 1, accumulate_grad_batches: int = 1
) -> int:
    """Samples behind one optimizer step: per-device batch * devices * nodes * gradient accumulation.

    Raises:
        ConfigError: a factor is below 1.
    """
    factors = {
        "per_device_batch_size": per_device_batch_size,
        "num_devices": num_devices,
        "num_nodes": num_nodes,
        "accumulate_grad_batches": accumulate_grad_batches,
    }
    for name, value in factors.items():
        if int(value) != value or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1 for the global batch size, got {value!r}")
    return int(per_device_batch_size * num_devices * num_nodes * accumulate_grad_batches)


def check_lr_scaling(mode: str, base_batch_size: int) -> None:
    """Raise :class:`ConfigError` for an unknown scaling mode or a base batch size below 1."""
    if mode not in LR_SCALING_RULES:
        raise ConfigError(f"lr_scaling must be one of {sorted(LR_SCALING_RULES)}, got {mode!r}")
    if isinstance(base_batch_size, bool) or int(base_batch_size) != base_batch_size or base_batch_size < 1:
        raise ConfigError(f"base_batch_size must be an integer >= 1, got {base_batch_size!r}")


def lr_scale_factor(mode: LRScaling, global_batch: int, base_batch_size: int) -> float:
    """The LR multiplier of ``mode`` for ``global_batch`` samples per step, relative to ``base_batch_size``.

    ``none`` → 1; ``linear`` → ``global / base``; ``sqrt`` → ``√(global / base)``.
    """
    check_lr_scaling(mode, base_batch_size)
    if global_batch < 1:
        raise ConfigError(f"global batch size must be >= 1, got {global_batch!r}")
    return float(LR_SCALING_RULES[mode](global_batch / base_batch_size))


def scale_optimizer_lr(optimizer: Optimizer, factor: float) -> list[tuple[float, float]]:
    """Multiply the LR of every parameter group (and the optimizer's default LR) by ``factor``.

    Call it before an LR scheduler is built on ``optimizer``: a scheduler copies each group's ``lr``
    into ``initial_lr`` (its ``base_lrs``) when it is created. An ``initial_lr`` already present is
    scaled too, so the two never disagree.

    Returns:
        ``(old_lr, new_lr)`` per parameter group, in group order.
    """
    changes = []
    for group in optimizer.param_groups:
        old = group["lr"]
        group["lr"] = old * factor
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * factor
        changes.append((float(old), float(group["lr"])))
    if "lr" in optimizer.defaults:
        optimizer.defaults["lr"] = optimizer.defaults["lr"] * factor
    return changes
