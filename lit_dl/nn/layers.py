"""What a layer is: the one place that classifies modules (norms, embeddings, weight layers,
activations), by class, never by module name.

Shared by the parameter groups (:mod:`lit_dl.optim`), weight initialisation (:mod:`lit_dl.nn.init`,
which also walks a network to find the activation each weight layer feeds) and the training-health
monitors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

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

WeightLayer = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
"""The type of a module of :data:`WEIGHT_LAYER_TYPES`."""

WEIGHT_LAYER_TYPES: tuple[type[nn.Module], ...] = get_args(WeightLayer)
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


GAIN_NONLINEARITIES = ("linear", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
"""The activations ``torch.nn.init.calculate_gain`` has a gain for (its conv names are ``linear``'s)."""


def register_activation_type(
    cls: type[nn.Module],
    init: InitFamily | None = None,
    nonlinearity: str | None = None,
    can_die: bool | None = None,
) -> None:
    """Teach lit_dl that ``cls`` is an activation (weight init, the monitors, the layer walk).

    An option left ``None`` comes from the nearest known base class of ``cls`` (a project's
    ``class ScaledTanh(nn.Tanh)`` starts as a tanh), or is ``"xavier"``/``"linear"``/``False`` when
    there is none; a given one is honoured, also for a subclass of a known class. A class lit_dl
    lists itself (``nn.Mish``) keeps its kind: register a subclass to give it another.
    :func:`lit_dl.nn.register_activation` calls this for the class its factory builds.

    Raises:
        ConfigError: ``init`` is not ``"he"``, ``"xavier"`` or ``"lecun"``, ``nonlinearity`` is not
            one of :data:`GAIN_NONLINEARITIES`, or a given option contradicts the kind of a class
            lit_dl lists itself.
    """
    if init is not None and init not in INIT_FAMILIES:
        raise ConfigError(f"init must be one of {', '.join(INIT_FAMILIES)}, got {init!r}")
    if nonlinearity is not None and nonlinearity not in GAIN_NONLINEARITIES:
        raise ConfigError(
            f"nonlinearity must be one of {', '.join(GAIN_NONLINEARITIES)} (torch.nn.init.calculate_gain's), "
            f"got {nonlinearity!r}"
        )
    base = activation_kind_of_type(cls) or ActivationKind("xavier", "linear")
    kind = ActivationKind(
        base.init if init is None else init,
        base.nonlinearity if nonlinearity is None else nonlinearity,
        base.can_die if can_die is None else can_die,
    )
    known = _ACTIVATION_KINDS.get(cls)
    if known is not None and known != kind and cls in ACTIVATION_TYPES:
        raise ConfigError(
            f"{cls.__name__} is a built-in activation ({known.init} init, {known.nonlinearity!r} gain); "
            f"register a subclass of it to give it another kind"
        )
    _ACTIVATION_KINDS[cls] = kind


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
