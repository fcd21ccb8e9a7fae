"""Checking an optimizer factory's settings before a run starts, without a device."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer

__all__ = ["build_torch_optimizer_probe", "optimizer_class"]


def optimizer_class(factory: Callable[..., Any]) -> type | None:
    """The class a factory builds: the factory itself when it is a class, or the class inside a
    ``functools.partial`` (as LightningCLI/jsonargparse build ``OptimizerCallable``); else ``None``."""
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
    cls = optimizer_class(factory)
    if cls is None or not issubclass(cls, Optimizer) or not cls.__module__.startswith("torch.optim."):
        return None
    return factory([nn.Parameter(torch.zeros(1))])
