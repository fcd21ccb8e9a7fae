"""The order of a network's modules, as far as the module tree tells it.

An ``nn.Sequential`` runs its children in order; any other container says nothing about the order in
its ``forward``. The structural checks therefore look for adjacent pairs only inside Sequentials
(:func:`sequential_runs`), and for long stretches in registration order (:func:`leaves`), the order in
which nearly every network is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeGuard

from torch import nn

from lit_dl.nn.layers import NORM_TYPES, SHAPE_ONLY_TYPES, WEIGHT_LAYER_TYPES, WeightLayer, is_activation

__all__ = [
    "final_module",
    "is_pass_through",
    "is_weight_layer",
    "leaves",
    "normalised_layers",
    "sequential_runs",
]


def is_pass_through(module: nn.Module) -> bool:
    """Neither holds weights nor normalises: an activation (registered ones too) or a shape-only
    module, which a signal passes on its way to the next layer."""
    return is_activation(module) or isinstance(module, SHAPE_ONLY_TYPES)


def is_weight_layer(module: nn.Module) -> TypeGuard[WeightLayer]:
    return isinstance(module, WEIGHT_LAYER_TYPES)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def leaves(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """Every module without children, depth first in registration order, with its full name."""
    return [
        (_join(prefix, name), module)
        for name, module in model.named_modules()
        if next(module.children(), None) is None
    ]


def _flatten(seq: nn.Sequential, prefix: str) -> Iterator[tuple[str, nn.Module]]:
    for name, child in seq.named_children():
        if isinstance(child, nn.Sequential):
            yield from _flatten(child, _join(prefix, name))
        else:
            yield _join(prefix, name), child


def sequential_runs(model: nn.Module, prefix: str = "") -> Iterator[list[tuple[str, nn.Module]]]:
    """Chains of modules known to run one after another: each outermost ``nn.Sequential`` with nested
    Sequentials inlined. Another container inside a chain is one opaque element; its insides are
    searched for chains of their own."""
    if isinstance(model, nn.Sequential):
        run = list(_flatten(model, prefix))
        yield run
        for name, child in run:
            if next(child.children(), None) is not None:
                yield from sequential_runs(child, name)
        return
    for name, child in model.named_children():
        yield from sequential_runs(child, _join(prefix, name))


def final_module(model: nn.Module, prefix: str = "") -> tuple[str, nn.Module]:
    """The last module that ``model``'s output is known to pass: the end of nested Sequentials."""
    while isinstance(model, nn.Sequential) and len(model) > 0:
        name, model = list(model.named_children())[-1]
        prefix = _join(prefix, name)
    return prefix, model


def normalised_layers(model: nn.Module) -> set[str]:
    """Names of the weight layers whose output meets a norm layer before the next weight layer
    (registration order): their init scale does not carry over to the next layer."""
    result: set[str] = set()
    pending: str | None = None
    for name, module in leaves(model):
        if is_weight_layer(module):
            pending = name
        elif isinstance(module, NORM_TYPES) and pending is not None:
            result.add(pending)
            pending = None
    return result
