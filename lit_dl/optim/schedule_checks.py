"""Which LR schedulers build on the optimizer's LR and which overwrite it."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from lit_dl.errors import ConfigError
from lit_dl.optim.checks import factory_class

__all__ = ["check_scaling_reaches_the_schedule", "overwrites_group_lr"]

# Known to set every group's LR from their own arguments (max_lr / base_lr), whatever the optimizer had.
_LR_OVERWRITING: tuple[type, ...] = (OneCycleLR, CyclicLR)


def overwrites_group_lr(factory: Callable[..., Any]) -> bool:
    """Whether the scheduler ``factory`` builds sets each group's LR from its own arguments instead of
    starting from the LR the optimizer was built with.

    Found by building it on two one-parameter CPU optimizers whose LRs differ by a factor of 2: a
    scheduler that follows the optimizer's LR (StepLR, CosineAnnealingLR, LambdaLR, the warmup
    schedules) starts at LRs in the same ratio; OneCycleLR (``max_lr``) and CyclicLR (``base_lr``)
    start at the same LR. A factory that cannot be built that way is judged by its class.
    """
    first_lrs = []
    for lr in (1.0, 2.0):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr, momentum=0.9)
        try:
            factory(optimizer)
        except Exception:  # any failure: the settings are not ours to judge here, the class is
            cls = factory_class(factory)
            return cls is not None and issubclass(cls, _LR_OVERWRITING)
        first_lrs.append(optimizer.param_groups[0]["lr"])
    return not math.isclose(first_lrs[1], 2.0 * first_lrs[0], rel_tol=1e-9)


def check_scaling_reaches_the_schedule(lr_scaling: str, lr_scheduler: Callable[..., Any] | None) -> None:
    """Refuse ``lr_scaling`` with a scheduler that overwrites the scaled LR.

    The task scales the optimizer's LR before the scheduler is built; OneCycleLR and CyclicLR would
    then set every group's LR from ``max_lr``/``base_lr``, so the run would train at the unscaled LR
    while it prints and logs the scaled one.

    Raises:
        ConfigError: ``lr_scaling`` is not ``"none"`` and the scheduler overwrites the group LR.
    """
    if lr_scaling == "none" or lr_scheduler is None or not overwrites_group_lr(lr_scheduler):
        return
    cls = factory_class(lr_scheduler)
    name = cls.__name__ if cls is not None else type(lr_scheduler).__name__
    raise ConfigError(
        f"lr_scaling={lr_scaling!r} cannot reach the LR of {name}: it sets every group's LR from its own "
        f"arguments (max_lr/base_lr), so the scaled LR would be ignored; use lit_dl.optim.RunLengthOneCycleLR "
        f"(its peak is the optimizer's lr, which lr_scaling scales) or lr_scaling: none"
    )
