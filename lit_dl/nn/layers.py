"""What a layer is: the one place that classifies modules (norms, embeddings, weight layers,
activations) and walks a network to find each weight layer and the activation it feeds.

Shared by the parameter groups (:mod:`lit_dl.optim`), :class:`~lit_dl.callbacks.WeightInit` and the
training-health monitors. Everything is recognised by class, never by module name.

How the activation that follows a layer is found:

- In an ``nn.Sequential`` (``LinearBlock`` is one), scan the modules after the layer in order,
  descending into nested Sequentials, skipping shape-only, norm, dropout and pooling modules. The
  first activation found is the layer's; any other module first (another Linear, say) means the
  layer feeds nothing nonlinear. ``nn.Identity`` counts as pass-through, so an "identity" activation
  ends up as "nothing nonlinear", which has the same gain. Reaching the end of the Sequential
  hands the question to whatever the Sequential itself feeds.
- A module that is not a Sequential says nothing about the order of its children, except through
  the residual-block protocol: a module with an ``act`` attribute holding an activation module
  and a ``residual_branch_norm()`` method is a residual block whose children's outputs are summed
  and fed to ``act`` (see :class:`lit_dl.nn.ResidualMLPBlock`). Children of any other module, such
  as the head of :class:`lit_dl.nn.MLP`, feed nothing known: they get the identity (linear) gain.
- Activations applied functionally inside ``forward`` (``F.relu(x)``) are invisible; force a
  scheme for such models.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn
from torch.nn.modules.batchnorm import _NormBase

# _NormBase covers BatchNorm{1,2,3}d, SyncBatchNorm, LazyBatchNorm and InstanceNorm.
NORM_TYPES: tuple[type[nn.Module], ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
"""Normalisation layers (recognised by base class: ``sync_batchnorm`` swaps BatchNorm classes)."""

EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
"""Lookup tables."""

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layers whose weights :class:`~lit_dl.callbacks.WeightInit` initialises."""

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Softplus,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
)
"""Modules treated as the activation a layer feeds."""

RELU_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
"""Activations whose units can die (output exactly zero for every input)."""

# Modules a layer's output passes through unchanged in kind on its way to the activation.
_PASS_THROUGH: tuple[type[nn.Module], ...] = (
    *NORM_TYPES,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
)


def is_residual_block(module: nn.Module) -> bool:
    """Whether ``module`` follows the residual-block protocol (``residual_branch_norm`` and ``act``)."""
    return hasattr(module, "residual_branch_norm") and isinstance(getattr(module, "act", None), nn.Module)


def _first_activation(modules: list[nn.Module]) -> tuple[bool, nn.Module | None]:
    """Scan ``modules`` in order: ``(decided, activation)``; ``decided`` is False if only pass-through
    modules were seen (the answer lies beyond them)."""
    for m in modules:
        if isinstance(m, nn.Sequential):
            decided, act = _first_activation(list(m))
            if decided:
                return True, act
        elif isinstance(m, ACTIVATION_TYPES):
            return True, m
        elif not isinstance(m, _PASS_THROUGH):
            return True, None
    return False, None


def layers_with_activation(
    model: nn.Module, feeds: nn.Module | None = None, prefix: str = ""
) -> Iterator[tuple[str, nn.Module, nn.Module | None]]:
    """Yield ``(name, layer, activation)`` for every weight layer of ``model`` in registration order.

    ``activation`` is the module the layer's output is fed to (``None``: nothing nonlinear known).
    ``feeds`` is what ``model``'s own output is fed to.
    """
    if isinstance(model, WEIGHT_LAYER_TYPES):
        yield prefix, model, feeds
        return
    children = list(model.named_children())
    if isinstance(model, nn.Sequential):
        for i, (name, child) in enumerate(children):
            decided, act = _first_activation([c for _, c in children[i + 1 :]])
            yield from layers_with_activation(child, act if decided else feeds, _join(prefix, name))
        return
    inner = model.act if is_residual_block(model) else None
    for name, child in children:
        if child is inner:
            continue
        yield from layers_with_activation(child, inner, _join(prefix, name))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name
