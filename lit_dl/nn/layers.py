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
  and a ``zero_init_weight()`` method is a residual block whose children's outputs are summed
  and fed to ``act`` (see :class:`lit_dl.nn.ResidualMLPBlock`). ``zero_init_weight()`` returns the
  tensor that, set to zero, makes the residual branch output zero (the weight of the norm ending
  the branch, or of its last conv/Linear when no norm ends it, as in pre-activation blocks), so
  the block starts as its shortcut (Goyal et al., 2017, "Accurate, Large Minibatch SGD", Sec. 5.1). Children of any other module, such
  as the head of :class:`lit_dl.nn.MLP`, feed nothing known: they get the identity (linear) gain.
- Activations applied functionally inside ``forward`` (``F.relu(x)``) are invisible; force a
  scheme for such models.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from lit_dl.errors import ConfigError

InitFamily = Literal["he", "xavier", "lecun"]
INIT_FAMILIES: tuple[str, ...] = ("he", "xavier", "lecun")

# _NormBase covers BatchNorm{1,2,3}d, SyncBatchNorm, LazyBatchNorm and InstanceNorm.
NORM_TYPES: tuple[type[nn.Module], ...] = (_NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm)
"""Normalisation layers (recognised by base class: ``sync_batchnorm`` swaps BatchNorm classes)."""

EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
"""Lookup tables."""

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
"""Layers whose weights :class:`~lit_dl.callbacks.WeightInit` initialises."""


@dataclass(frozen=True)
class ActivationKind:
    """What the rest of lit_dl needs to know about an activation class.

    Attributes:
        init: The weight-init family that suits a layer feeding it: ``"he"`` (rectifiers; He et al.,
            2015, "Delving Deep into Rectifiers", Sec. 2.2), ``"xavier"`` (saturating or linear;
            Glorot & Bengio, 2010) or ``"lecun"`` (SELU: fan-in normal with gain 1; Klambauer et al.,
            2017, "Self-Normalizing Neural Networks", Sec. 3).
        nonlinearity: The ``torch.nn.init.calculate_gain`` name of its gain.
        can_die: Whether a unit can output exactly zero for every input (ReLU), so that
            :class:`~lit_dl.callbacks.DeadReLUMonitor` watches it.
    """

    init: InitFamily
    nonlinearity: str
    can_die: bool = False


# Class -> kind; a subclass (a project's own ReLU) gets the kind of its nearest listed base.
# ReLU-shaped smooth activations (ELU, GELU, SiLU, Mish, Softplus) get He's ReLU gain.
_ACTIVATION_KINDS: dict[type[nn.Module], ActivationKind] = {
    nn.ReLU: ActivationKind("he", "relu", can_die=True),
    nn.ReLU6: ActivationKind("he", "relu", can_die=True),
    nn.LeakyReLU: ActivationKind("he", "leaky_relu"),
    nn.PReLU: ActivationKind("he", "leaky_relu"),
    nn.ELU: ActivationKind("he", "relu"),
    nn.CELU: ActivationKind("he", "relu"),
    nn.GELU: ActivationKind("he", "relu"),
    nn.SiLU: ActivationKind("he", "relu"),
    nn.Mish: ActivationKind("he", "relu"),
    nn.Softplus: ActivationKind("he", "relu"),
    nn.SELU: ActivationKind("lecun", "linear"),
    nn.Sigmoid: ActivationKind("xavier", "sigmoid"),
    nn.Tanh: ActivationKind("xavier", "tanh"),
    nn.Hardtanh: ActivationKind("xavier", "linear"),
    nn.Hardsigmoid: ActivationKind("xavier", "sigmoid"),
    nn.Softsign: ActivationKind("xavier", "linear"),
}

ACTIVATION_TYPES: tuple[type[nn.Module], ...] = tuple(_ACTIVATION_KINDS)
"""The built-in activation classes. Classes added with :func:`register_activation_type` are not in
this tuple: ask :func:`is_activation` / :func:`activation_kind`, which know both."""

RELU_TYPES: tuple[type[nn.Module], ...] = (nn.ReLU, nn.ReLU6)
"""Built-in activations whose units can die (output exactly zero for every input); see
:func:`can_die` for registered ones too."""


def register_activation_type(
    cls: type[nn.Module], init: InitFamily = "xavier", nonlinearity: str = "linear", can_die: bool = False
) -> None:
    """Teach lit_dl that ``cls`` is an activation (WeightInit, the monitors, the layer walk).

    A class already known (``nn.Mish``) keeps its kind. :func:`lit_dl.nn.register_activation`
    calls this for the class its factory builds.

    Raises:
        ConfigError: ``init`` is not ``"he"``, ``"xavier"`` or ``"lecun"``.
    """
    if init not in INIT_FAMILIES:
        raise ConfigError(f"init must be one of {', '.join(INIT_FAMILIES)}, got {init!r}")
    if activation_kind_of_type(cls) is None:
        _ACTIVATION_KINDS[cls] = ActivationKind(init, nonlinearity, can_die)


def activation_kind_of_type(cls: type) -> ActivationKind | None:
    """The kind of activation class ``cls`` (its nearest known base class), or ``None``."""
    for base in cls.__mro__:
        kind = _ACTIVATION_KINDS.get(base)
        if kind is not None:
            return kind
    return None


def activation_kind(module: nn.Module | None) -> ActivationKind | None:
    """The kind of ``module`` if it is an activation (built-in or registered), else ``None``."""
    return None if module is None else activation_kind_of_type(type(module))


def saturates(module: nn.Module) -> bool:
    """Whether ``module`` is a bounded, saturating activation (sigmoid/tanh-like, built-in or registered):
    the ``"xavier"`` init family, which Glorot & Bengio (2010) derived for such units and whose
    gradients vanish where the outputs reach their bounds."""
    kind = activation_kind(module)
    return kind is not None and kind.init == "xavier"


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an activation, built-in or registered."""
    return activation_kind(module) is not None


def can_die(module: nn.Module) -> bool:
    """Whether ``module`` is an activation whose units can die (ReLU-like)."""
    kind = activation_kind(module)
    return kind is not None and kind.can_die


SHAPE_ONLY_TYPES: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
)
"""Modules that hold no weights and only reshape or pool the signal."""

DROPOUT_TYPES: tuple[type[nn.Module], ...] = (nn.modules.dropout._DropoutNd,)
"""Dropout of every kind (Dropout, Dropout1d/2d/3d, AlphaDropout)."""

# Modules a layer's output passes through unchanged in kind on its way to the activation.
_PASS_THROUGH: tuple[type[nn.Module], ...] = (*NORM_TYPES, *DROPOUT_TYPES, *SHAPE_ONLY_TYPES)


def is_residual_block(module: nn.Module) -> bool:
    """Whether ``module`` follows the residual-block protocol (``zero_init_weight()`` and ``act``)."""
    return callable(getattr(module, "zero_init_weight", None)) and isinstance(
        getattr(module, "act", None), nn.Module
    )


def _first_activation(modules: list[nn.Module]) -> tuple[bool, nn.Module | None]:
    """Scan ``modules`` in order: ``(decided, activation)``; ``decided`` is False if only pass-through
    modules were seen (the answer lies beyond them)."""
    for m in modules:
        if isinstance(m, nn.Sequential):
            decided, act = _first_activation(list(m))
            if decided:
                return True, act
        elif is_activation(m):
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


def activation_feature_dims(model: nn.Module) -> dict[nn.Module, int]:
    """For each activation module that a weight layer of ``model`` feeds: the dimension of its input
    that indexes features, ``1`` after a conv (channels) and ``-1`` after a Linear (so a ``(B, T, D)``
    sequence has ``D`` features, not ``T``). Activations fed by nothing known are left out; callers
    fall back to dimension 1, torch's channels-first convention (BatchNorm's).
    """
    dims: dict[nn.Module, int] = {}
    for _, layer, act in layers_with_activation(model):
        if act is not None and act not in dims:
            dims[act] = -1 if isinstance(layer, nn.Linear) else 1
    return dims
