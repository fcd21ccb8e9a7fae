"""Optimizer and LR-scheduler values that torch accepts but that train to nonsense.

torch checks ``lr >= 0`` and ``momentum >= 0`` but takes ``lr=0`` (nothing moves), ``lr=nan``
(through a tensor or YAML's ``.nan``), ``momentum=1.5`` (the velocity grows without bound), SGD's
``dampening=2`` (the gradient enters the velocity negated), RMSprop's ``alpha=1.5`` (a negative
square average, then NaN) and ASGD's ``lambd=-1`` (the step size grows, then divides by zero); a
``CosineAnnealingLR(T_max=0)`` fails only at its first step, after an epoch of training. These checks
run when the model is configured, before a Trainer writes anything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from lit_dl.errors import ConfigError

__all__ = [
    "build_torch_optimizer_probe",
    "check_lr_scheduler_arguments",
    "check_optimizer_factory",
    "check_optimizer_values",
    "factory_class",
    "factory_name",
]


def _bad_number(value: Any, ok: Callable[[float], bool]) -> bool:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not ok(float(value))


def factory_class(factory: Callable[..., Any]) -> type | None:
    """The class a factory builds: the factory itself when it is a class, or the class inside a
    ``functools.partial`` (as LightningCLI/jsonargparse build ``OptimizerCallable`` and
    ``LRSchedulerCallable``); else ``None``."""
    if isinstance(factory, type):
        return factory
    if isinstance(factory, functools.partial):
        for candidate in (factory.func, *factory.args):
            if isinstance(candidate, type):
                return candidate
    return None


def build_torch_optimizer_probe(factory: Callable[..., Any]) -> Optimizer | None:
    """Build the factory's optimizer on one CPU dummy parameter if it is one of torch's own.

    torch's optimizers validate their hyper-parameters (lr, momentum, betas, eps, option clashes)
    in ``__init__`` and accept CPU parameters for every option (``fused``/``capturable`` included as
    of torch 2.x), so building one on a CPU dummy checks exactly what torch checks. Any other
    factory (a third-party optimizer, perhaps GPU-only such as a fused CUDA kernel, or an opaque
    callable) is not built: its settings are checked when the run builds it on the real parameters.

    Returns:
        The probe optimizer, or ``None`` when the factory is not a torch optimizer.

    Raises:
        ValueError, TypeError, RuntimeError: torch refused the settings.
    """
    cls = factory_class(factory)
    if cls is None or not issubclass(cls, Optimizer) or not cls.__module__.startswith("torch.optim."):
        return None
    return factory([nn.Parameter(torch.zeros(1))])


def factory_name(factory: object) -> str:
    """``AdamW`` for ``torch.optim.AdamW`` or a ``functools.partial`` around it (as the CLI builds)."""
    cls = factory_class(factory)  # type: ignore[arg-type]
    return cls.__name__ if cls is not None else getattr(factory, "__name__", type(factory).__name__)


def check_optimizer_factory(factory: Callable[..., Any]) -> None:
    """Check an optimizer factory's settings at configuration time, before a Trainer writes anything:
    torch's own checks (by building a probe, see :func:`build_torch_optimizer_probe`) and the values
    torch accepts but that train to nonsense (:func:`check_optimizer_values`). Other optimizers are
    left to the run: they may only build on their device.

    Raises:
        ConfigError: naming the optimizer and the refused setting.
    """
    try:
        built = build_torch_optimizer_probe(factory)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(f"invalid optimizer settings for {factory_name(factory)}: {err}") from None
    if built is not None:
        check_optimizer_values(built, factory_name(factory))


# group option -> (is allowed, what is allowed)
_OPTIMIZER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "dampening": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "eps": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
}


# Options whose name means different things in different optimizers: optimizer class -> rules.
# (ASGD's ``alpha`` is a power of its step-size decay, RMSprop's a smoothing constant.)
_CLASS_RULES: dict[type[Optimizer], dict[str, tuple[Callable[[float], bool], str]]] = {
    torch.optim.RMSprop: {"alpha": (lambda v: 0 <= v <= 1, "in [0, 1]")},
    torch.optim.ASGD: {"lambd": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")},
}


def check_optimizer_values(optimizer: torch.optim.Optimizer, name: str) -> None:
    """Refuse values that torch accepts but that train to nonsense: a learning rate that is zero or
    not finite, a momentum outside ``[0, 1)``, a dampening outside ``[0, 1]``, RMSprop's ``alpha``
    above 1, ASGD's ``lambd`` below 0 (torch itself checks betas, eps, rho and the rest).

    Args:
        optimizer: The optimizer as built from the config (on any parameters).
        name: Its class name, for the message.

    Raises:
        ConfigError: naming the option, its value and what is allowed.
    """
    rules = dict(_OPTIMIZER_RULES)
    for cls, class_rules in _CLASS_RULES.items():
        if isinstance(optimizer, cls):
            rules.update(class_rules)
    for group in optimizer.param_groups:
        for option, (ok, allowed) in rules.items():
            value = group.get(option)
            if _bad_number(value, ok):
                raise ConfigError(
                    f"invalid optimizer settings for {name}: {option}={value!r}, must be {allowed}"
                )


# scheduler argument -> (is allowed, what is allowed); applied to whichever scheduler has it.
_SCHEDULER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "T_max": (lambda v: v >= 1, ">= 1"),
    "T_0": (lambda v: v >= 1, ">= 1"),
    "T_mult": (lambda v: v >= 1, ">= 1"),
    "step_size": (lambda v: v >= 1, ">= 1"),
    "total_steps": (lambda v: v >= 1, ">= 1"),
    "epochs": (lambda v: v >= 1, ">= 1"),
    "steps_per_epoch": (lambda v: v >= 1, ">= 1"),
    "gamma": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "eta_min": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "max_lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
}


def check_lr_scheduler_arguments(factory: Any) -> None:
    """Refuse scheduler arguments that fail only later (``T_max=0``, ``step_size=0``) or zero the LR.

    Args:
        factory: The scheduler factory from the config: a ``functools.partial`` whose keywords are
            the scheduler's arguments (what jsonargparse builds for ``LRSchedulerCallable``), or ``None``.

    Raises:
        ConfigError: naming the scheduler, the argument, its value and what is allowed.
    """
    keywords = getattr(factory, "keywords", None)
    if not isinstance(keywords, dict):
        return
    cls = factory_class(factory)
    scheduler = cls.__name__ if cls is not None else "lr_scheduler"
    for option, (ok, allowed) in _SCHEDULER_RULES.items():
        value = keywords.get(option)
        if _bad_number(value, ok):
            raise ConfigError(
                f"invalid lr_scheduler settings for {scheduler}: {option}={value!r}, must be {allowed}"
            )
