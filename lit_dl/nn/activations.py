"""Activation functions chosen by name.

One small factory, :func:`make_activation`, turns a name from a YAML file into an ``nn.Module``.
Unknown names raise :class:`~lit_dl.errors.ConfigError` listing the valid ones. Downstream projects add
their own with :func:`register_activation`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn.layers import InitFamily, register_activation_type

__all__ = ["ACTIVATIONS", "activation_names", "make_activation", "register_activation"]

# name -> factory(**kwargs) -> nn.Module. Never in-place: autograd may need the input.
ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda negative_slope=0.01: nn.LeakyReLU(negative_slope),
    "elu": lambda alpha=1.0: nn.ELU(alpha),
    "gelu": lambda approximate="none": nn.GELU(approximate=approximate),
    "silu": lambda: nn.SiLU(),
    "sigmoid": lambda: nn.Sigmoid(),
    "tanh": lambda: nn.Tanh(),
    "softplus": lambda beta=1.0: nn.Softplus(beta=beta),
    "identity": lambda: nn.Identity(),
}


def activation_names() -> list[str]:
    """The registered activation names, sorted."""
    return sorted(ACTIVATIONS)


def register_activation(
    name: str,
    factory: Callable[..., nn.Module],
    module_type: type[nn.Module] | None = None,
    init: InitFamily | None = None,
    nonlinearity: str | None = None,
    can_die: bool | None = None,
) -> None:
    """Make ``factory`` available under ``name`` (e.g. ``register_activation("mish", nn.Mish)``).

    The class it builds also becomes known to the layer taxonomy (:mod:`lit_dl.nn.layers`), so
    weight init sees it after a layer and the monitors watch it. An option left ``None`` comes from
    the nearest class lit_dl knows among its bases (a ``class MyReLU(nn.ReLU)`` is ReLU-like), else
    ``"xavier"``/``"linear"``/``False``; a given one is honoured, also for a subclass of a known
    class (a ReLU subclass registered with ``init="xavier", nonlinearity="linear"`` gets Xavier with
    gain 1). A built-in class keeps its kind.

    Args:
        name: The name YAML files use.
        factory: Builds the module; called with the options given to :func:`make_activation`.
        module_type: The class ``factory`` builds; ``None``: found by calling ``factory()`` once.
        init: Weight-init family of the layers feeding it: ``"he"``, ``"xavier"`` or ``"lecun"``.
        nonlinearity: Its ``torch.nn.init.calculate_gain`` name (``"relu"``, ``"tanh"``, ...).
        can_die: Whether its units can output zero for every input (watched by DeadReLUMonitor).

    Raises:
        ConfigError: ``name`` is taken, ``module_type`` is ``None`` and ``factory()`` fails, or an
            option contradicts a built-in class's kind.
    """
    if name in ACTIVATIONS:
        raise ConfigError(f"activation {name!r} is already registered")
    if module_type is None:
        try:
            module_type = type(factory())
        except TypeError as err:
            raise ConfigError(
                f"activation {name!r}: factory() needs arguments ({err}); pass module_type"
            ) from None
    register_activation_type(module_type, init, nonlinearity, can_die)
    ACTIVATIONS[name] = factory


def make_activation(name: str, **kwargs: Any) -> nn.Module:
    """Build the activation registered as ``name``.

    Args:
        name: One of :func:`activation_names` (``"relu"``, ``"leaky_relu"``, ``"tanh"``, ...).
        **kwargs: Options of that activation, e.g. ``negative_slope`` for ``leaky_relu``.

    Raises:
        ConfigError: ``name`` is not registered, or ``kwargs`` do not fit it.
    """
    try:
        factory = ACTIVATIONS[name]
    except KeyError:
        raise ConfigError(
            f"unknown activation {name!r}; valid names are: {', '.join(activation_names())}"
        ) from None
    try:
        module = factory(**kwargs)
    except TypeError as err:
        raise ConfigError(f"activation {name!r} does not take options {sorted(kwargs)}: {err}") from None
    if kwargs:
        # options of the wrong type or value (negative_slope='abc', approximate='fast') are taken by the
        # constructor and fail only in the first forward pass: try one on two numbers
        try:
            with torch.no_grad():
                module(torch.zeros(2))
        except (TypeError, ValueError, RuntimeError) as err:
            options = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ConfigError(f"activation {name!r} with {options} does not run: {err}") from None
    return module
