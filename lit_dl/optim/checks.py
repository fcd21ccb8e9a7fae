"""Optimizer and LR-scheduler values that torch accepts but that train to nonsense.

torch checks ``lr >= 0`` and ``momentum >= 0`` but takes ``lr=0`` (nothing moves), ``lr=nan``
(through a tensor or YAML's ``.nan``), ``momentum=1.5`` (the velocity grows without bound), SGD's
``dampening=2`` (the gradient enters the velocity negated), RMSprop's ``alpha=1.5`` (a negative
square average, then NaN) and ASGD's ``lambd=-1`` (the step size grows, then divides by zero); a
``CosineAnnealingLR(T_max=0)`` fails only at its first step, after an epoch of training. The values
torch refuses itself are checked here too, so that the message says what is allowed ("lr=-0.5, must
be a finite number > 0" where torch says "Invalid learning rate: -0.5"). These checks run when the
model is configured, before a Trainer writes anything.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

from lit_dl.errors import ConfigError

__all__ = [
    "build_torch_optimizer_probe",
    "check_lr_scheduler_arguments",
    "check_optimizer_factory",
    "check_optimizer_options",
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


def build_torch_optimizer_probe(factory: Callable[..., Any], params: Any = None) -> Optimizer | None:
    """Build the factory's optimizer on one CPU dummy parameter (or on ``params``: parameter groups)
    if it is one of torch's own.

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
    return factory([nn.Parameter(torch.zeros(1))] if params is None else params)


def factory_name(factory: object) -> str:
    """``AdamW`` for ``torch.optim.AdamW`` or a ``functools.partial`` around it (as the CLI builds)."""
    cls = factory_class(factory)  # type: ignore[arg-type]
    return cls.__name__ if cls is not None else getattr(factory, "__name__", type(factory).__name__)


def check_optimizer_factory(factory: Callable[..., Any]) -> None:
    """Check an optimizer factory's settings at configuration time, before a Trainer writes anything:
    the ranges lit_dl knows, on the factory's arguments (:func:`check_optimizer_options`: their
    messages say what is allowed, where torch's say only "Invalid learning rate: -0.5"); then torch's
    own checks (by building a probe, see :func:`build_torch_optimizer_probe`) and the same ranges on
    the built groups (:func:`check_optimizer_values`). Other optimizers are left to the run: they may
    only build on their device.

    Raises:
        ConfigError: naming the optimizer and the refused setting.
    """
    cls = factory_class(factory)
    keywords = getattr(factory, "keywords", None)
    if cls is not None and issubclass(cls, Optimizer) and isinstance(keywords, dict):
        check_optimizer_options(keywords, cls)
    try:
        built = build_torch_optimizer_probe(factory)
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(f"invalid optimizer settings for {factory_name(factory)}: {err}") from None
    if built is not None:
        check_optimizer_values(built, factory_name(factory))


def _in_unit_interval(betas: Any) -> bool:
    values = betas.tolist() if isinstance(betas, torch.Tensor) else betas
    if not isinstance(values, (list, tuple)):
        return True
    return all(not isinstance(b, (int, float)) or 0 <= b < 1 for b in values)


# group option -> (is allowed, what is allowed): numbers (a one-element tensor counts as one)
_OPTIMIZER_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "dampening": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "weight_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "eps": (lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
    "rho": (lambda v: 0 <= v <= 1, "in [0, 1]"),
    "lr_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "initial_accumulator_value": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
    "momentum_decay": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0"),
}

# group option -> (is allowed, what is allowed): pairs
_PAIR_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "betas": (_in_unit_interval, "two numbers, each in [0, 1)"),
}


# Options whose name means different things in different optimizers: optimizer class -> rules.
# (ASGD's ``alpha`` is a power of its step-size decay, RMSprop's a smoothing constant.)
_CLASS_RULES: dict[type[Optimizer], dict[str, tuple[Callable[[float], bool], str]]] = {
    torch.optim.RMSprop: {"alpha": (lambda v: 0 <= v <= 1, "in [0, 1]")},
    torch.optim.ASGD: {"lambd": (lambda v: math.isfinite(v) and v >= 0, "a finite number >= 0")},
}


def _number(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value


def check_optimizer_options(options: Mapping[str, Any], cls: type[Optimizer] | None, name: str = "") -> None:
    """Refuse optimizer options outside their useful range: a learning rate that is zero, negative or
    not finite, a momentum outside ``[0, 1)``, a dampening or ``rho`` outside ``[0, 1]``, a negative
    weight decay, an ``eps`` that is not > 0, ``betas`` outside ``[0, 1)``, Nesterov momentum without
    momentum or with dampening, RMSprop's ``alpha`` above 1, ASGD's ``lambd`` below 0.

    Args:
        options: The optimizer's arguments (a factory's keywords) or one of its parameter groups.
        cls: The optimizer class (for its class-specific rules), if known.
        name: Its name in the message (default: the class name).

    Raises:
        ConfigError: naming the option, its value and what is allowed.
    """
    name = name or (cls.__name__ if cls is not None else "the optimizer")
    rules = dict(_OPTIMIZER_RULES)
    for rule_cls, class_rules in _CLASS_RULES.items():
        if cls is not None and issubclass(cls, rule_cls):
            rules.update(class_rules)
    for option, (ok, allowed) in rules.items():
        value = options.get(option)
        if _bad_number(value, ok):
            raise ConfigError(f"invalid optimizer settings for {name}: {option}={value!r}, must be {allowed}")
    for option, (ok_pair, allowed) in _PAIR_RULES.items():
        value = options.get(option)
        if value is not None and not ok_pair(value):
            raise ConfigError(f"invalid optimizer settings for {name}: {option}={value!r}, must be {allowed}")
    if options.get("nesterov") is True:
        momentum, dampening = _number(options.get("momentum", 0)), _number(options.get("dampening", 0))
        if not (isinstance(momentum, (int, float)) and momentum > 0 and dampening == 0):
            raise ConfigError(
                f"invalid optimizer settings for {name}: nesterov=True needs momentum > 0 and dampening=0, "
                f"got momentum={momentum!r}, dampening={dampening!r}; set momentum > 0 (0.9 is usual) and "
                "dampening=0, or nesterov=false"
            )


def check_optimizer_values(optimizer: torch.optim.Optimizer, name: str) -> None:
    """:func:`check_optimizer_options` on every parameter group of ``optimizer``, as built from the
    config (on any parameters): a group may set its own values.

    Args:
        optimizer: The optimizer as built from the config (on any parameters).
        name: Its class name, for the message.

    Raises:
        ConfigError: naming the option, its value and what is allowed.
    """
    for group in optimizer.param_groups:
        check_optimizer_options(group, type(optimizer), name)


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
