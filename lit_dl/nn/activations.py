"""Activation functions chosen by name.

One small factory, :func:`make_activation`, turns a name from a YAML file into an ``nn.Module``.
Unknown names raise :class:`~lit_dl.errors.ConfigError` listing the valid ones. Downstream projects add
their own with :func:`register_activation`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from lit_dl.errors import ConfigError

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


def register_activation(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``factory`` available under ``name`` (e.g. ``register_activation("mish", nn.Mish)``)."""
    if name in ACTIVATIONS:
        raise ConfigError(f"activation {name!r} is already registered")
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
        return factory(**kwargs)
    except TypeError as err:
        raise ConfigError(f"activation {name!r} does not take options {sorted(kwargs)}: {err}") from None
