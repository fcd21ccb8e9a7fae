"""Weight initialisation owned by the networks, and the activation walk that initialises the rest.

Every lit_dl network (and residual block) is a :class:`SelfInitializing` module: it says which
activation each of its weight layers feeds (:meth:`~SelfInitializing.layer_activations`) and which
weights zero its residual branches, and :meth:`~SelfInitializing.init_weights` initialises it from
that, the timm/torchvision habit. :class:`lit_dl.callbacks.WeightInit` calls ``init_weights`` where
a network has it and walks any other network's module tree (:func:`layers_with_activation`):

- In an ``nn.Sequential`` (``LinearBlock`` is one), the modules after a layer are scanned in order,
  descending into nested Sequentials, skipping shape-only, norm, dropout and pooling modules. The
  first activation found is the layer's; any other module first (another Linear, say) means the
  layer feeds nothing nonlinear (``None``). ``nn.Identity`` passes through, so an "identity"
  activation ends up as "nothing nonlinear", which has the same gain. Reaching the end of the
  Sequential hands the question to whatever the Sequential itself feeds.
- The output of the module the walk starts from feeds nothing nonlinear (logits).
- Any other module's ``forward`` may do anything with its children's outputs (``F.gelu(self.fc(x))``):
  its layers feed :data:`UNKNOWN`. Such a layer keeps the weights it has (PyTorch's default) and the
  table says ``unknown``; only a scheme that needs no activation (a forced scheme with a ``gain``, or
  ``torch_default``) touches it. Xavier is never applied by guess.

Weights that were loaded (:func:`lit_dl.nn.init_marks.mark_initialized`) are never touched, by
``init_weights`` nor by the walk.
"""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Literal, cast, get_args

import torch
from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.init_marks import initialized_by
from lit_dl.nn.layers import DROPOUT_TYPES, NORM_TYPES, SHAPE_ONLY_TYPES, WEIGHT_LAYER_TYPES, activation_kind

__all__ = [
    "SCHEMES",
    "UNKNOWN",
    "InitRecord",
    "Mode",
    "Scheme",
    "SelfInitializing",
    "activation_feature_dims",
    "check_init_options",
    "init_module",
    "layers_with_activation",
    "marked_modules",
    "plan_module",
]

Scheme = Literal[
    "auto",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "torch_default",
]
SCHEMES: tuple[str, ...] = get_args(Scheme)
Mode = Literal["fan_in", "fan_out"]

# The scheme "auto" picks for each init family of lit_dl.nn.layers.ActivationKind.
_AUTO_SCHEME = {"he": "kaiming_normal", "lecun": "kaiming_normal", "xavier": "xavier_uniform"}


class _Unknown:
    """Type of :data:`UNKNOWN`."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""What a layer feeds when the module tree cannot tell (a functional activation in ``forward``)."""

Feeds = nn.Module | None | _Unknown
"""What a weight layer's output is fed to: an activation module, ``None`` (nothing nonlinear) or
:data:`UNKNOWN`."""


@dataclass(frozen=True)
class InitRecord:
    """What was (or would be) done to one weight layer.

    Attributes:
        layer: Its name, relative to the module initialised.
        shape: Its weight's shape.
        scheme: The scheme applied, or ``"default"``: left as it was (its activation is unknown).
        activation: The class name of the activation it feeds, ``"none"`` or ``"unknown"``.
        gain: The gain applied (``None`` for ``"default"``).
        mode: The fan He/Kaiming init kept the variance of (``None`` for other schemes).
    """

    layer: str
    shape: tuple[int, ...]
    scheme: str
    activation: str
    gain: float | None
    mode: Mode | None = None


def check_init_options(scheme: str, mode: str | None, gain: float | None) -> None:
    """Raise ``ConfigError`` unless ``scheme``, ``mode`` and ``gain`` are valid."""
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown weight init scheme {scheme!r}; valid names are: {', '.join(SCHEMES)}")
    if mode not in (None, "fan_in", "fan_out"):
        raise ConfigError(f"mode must be 'fan_in' or 'fan_out', got {mode!r} (null: each network's own)")
    if gain is not None and not gain > 0:
        raise ConfigError(f"gain must be > 0, got {gain!r} (null: each activation's own)")


class SelfInitializing(nn.Module, abc.ABC):
    """Base of a module that owns its initialisation (every network and residual block of lit_dl.nn).

    A subclass says what its weight layers feed (:meth:`layer_activations`) and, if it has residual
    branches, which weights start them at zero (:meth:`residual_zero_weights`); :meth:`init_weights`
    does the rest. Override ``init_weights`` and :meth:`init_plan` together for another recipe.

    Attributes:
        init_mode: The fan He/Kaiming init keeps when the caller does not say (``"fan_in"``: the
            forward signal; ResNet: ``"fan_out"``, as torchvision).
        zero_init_residual: Whether :meth:`init_weights` zeroes the residual branches when the caller
            does not say (a ResNet built with ``zero_init_residual=True``).
    """

    init_mode: Mode = "fan_in"
    zero_init_residual: bool = False

    @abc.abstractmethod
    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        """Yield ``(name, layer, feeds)`` for every weight layer, in registration order, with names
        relative to this module. Abstract: a module without it cannot be built."""

    def residual_zero_weights(self) -> Iterator[Tensor]:
        """The weights that, set to zero, make each residual branch inside output zero, so each block
        starts as its shortcut (Goyal et al., 2017, "Accurate, Large Minibatch SGD", Sec. 5.1).
        By default those of every self-initialising module inside this one."""
        for module in _outermost_inside(self):
            yield from module.residual_zero_weights()

    def init_plan(
        self, scheme: Scheme = "auto", mode: Mode | None = None, gain: float | None = None
    ) -> list[InitRecord]:
        """What :meth:`init_weights` would do with these options, without touching a weight."""
        check_init_options(scheme, mode, gain)
        marked = _Marked(self)
        fan = mode or self.init_mode
        return [
            _plan_layer(name, layer, feeds, scheme, fan, gain)
            for name, layer, feeds in self.layer_activations()
            if not marked.covers(layer)
        ]

    @torch.no_grad()
    def init_weights(
        self,
        scheme: Scheme = "auto",
        mode: Mode | None = None,
        gain: float | None = None,
        zero_init_residual: bool | None = None,
        generator: torch.Generator | None = None,
    ) -> list[InitRecord]:
        """Initialise every weight layer for the activation it feeds; biases start at zero, norm
        scales at one and shifts at zero. Loaded (marked) modules are left as they are.

        Args:
            scheme: ``"auto"``: He/Kaiming normal for layers feeding ReLU-like units (He et al., 2015,
                "Delving Deep into Rectifiers", Sec. 2.2) and SELU (LeCun normal, Klambauer et al.,
                2017), Xavier/Glorot uniform for tanh, sigmoid or nothing nonlinear (Glorot & Bengio,
                2010, Eq. 16); or one scheme for every layer (see :data:`SCHEMES`).
            mode: The fan He/Kaiming init keeps; ``None``: :attr:`init_mode`.
            gain: One gain for every layer instead of each activation's (``calculate_gain``); e.g.
                ``1.0`` with ``xavier_normal`` for Glorot & Bengio's original init.
            zero_init_residual: Zero :meth:`residual_zero_weights`; ``None``: :attr:`zero_init_residual`.
            generator: Where the random numbers come from (drawn on the CPU, copied to the layer's
                device); ``None``: the global RNG.

        Returns:
            One record per initialised weight layer.
        """
        records = self.init_plan(scheme, mode, gain)
        layers = {name: layer for name, layer, _ in self.layer_activations()}
        for rec in records:
            _fill_layer(layers[rec.layer], rec, generator)
        marked = _Marked(self)
        _reset_norms(self, marked)
        if self.zero_init_residual if zero_init_residual is None else zero_init_residual:
            for weight in self.residual_zero_weights():
                if id(weight) not in marked.params:
                    weight.zero_()
        return records


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


_PASS_THROUGH: tuple[type[nn.Module], ...] = (*NORM_TYPES, *DROPOUT_TYPES, *SHAPE_ONLY_TYPES)
"""Modules a layer's output passes through unchanged in kind on its way to the activation."""


class _Delegated:
    """Type of :data:`_DELEGATED`."""


_DELEGATED = _Delegated()
"""What :func:`_walk` yields instead of a layer's activation for a self-initialising module."""


def _weight(layer: nn.Module) -> Tensor:
    """A weight layer's ``weight`` (``nn.Module`` attribute access is typed ``Tensor | Module``)."""
    return cast(Tensor, layer.weight)


def _bias(layer: nn.Module) -> Tensor | None:
    """A weight or norm layer's ``bias``, ``None`` when it has none."""
    return cast("Tensor | None", getattr(layer, "bias", None))


def _first_activation(modules: list[nn.Module]) -> tuple[bool, nn.Module | None]:
    """Scan ``modules`` in order: ``(decided, activation)``; ``decided`` is False if only pass-through
    modules were seen (the answer lies beyond them)."""
    for m in modules:
        if isinstance(m, nn.Sequential):
            decided, act = _first_activation(list(m))
            if decided:
                return True, act
        elif activation_kind(m) is not None:
            return True, m
        elif not isinstance(m, _PASS_THROUGH):
            return True, None
    return False, None


def _walk(
    model: nn.Module, feeds: Feeds, prefix: str, expand: bool
) -> Iterator[tuple[str, nn.Module, Feeds | _Delegated]]:
    if isinstance(model, WEIGHT_LAYER_TYPES):
        yield prefix, model, feeds
    elif isinstance(model, SelfInitializing):
        if not expand:
            yield prefix, model, _DELEGATED
            return
        for name, layer, act in model.layer_activations():
            yield _join(prefix, name), layer, act
    elif isinstance(model, nn.Sequential):
        children = list(model.named_children())
        for i, (name, child) in enumerate(children):
            decided, act = _first_activation([c for _, c in children[i + 1 :]])
            yield from _walk(child, act if decided else feeds, _join(prefix, name), expand)
    else:
        for name, child in model.named_children():
            yield from _walk(child, UNKNOWN, _join(prefix, name), expand)


def layers_with_activation(
    model: nn.Module, feeds: Feeds = None, prefix: str = ""
) -> Iterator[tuple[str, nn.Module, Feeds]]:
    """Yield ``(name, layer, feeds)`` for every weight layer of ``model`` in registration order.

    ``feeds`` (yielded) is the activation module the layer's output is fed to, ``None`` (nothing
    nonlinear) or :data:`UNKNOWN`; self-initialising modules say it themselves. ``feeds`` (the
    argument) is what ``model``'s own output is fed to.
    """
    yield from _walk(model, feeds, prefix, expand=True)  # type: ignore[misc]  # expand=True never yields _DELEGATED


def activation_feature_dims(model: nn.Module) -> dict[nn.Module, int]:
    """For each activation module that a weight layer of ``model`` feeds: the dimension of its input
    that indexes features, ``1`` after a conv (channels) and ``-1`` after a Linear (so a ``(B, T, D)``
    sequence has ``D`` features, not ``T``). Activations fed by nothing known are left out; callers
    fall back to dimension 1, torch's channels-first convention (BatchNorm's).
    """
    dims: dict[nn.Module, int] = {}
    for _, layer, act in layers_with_activation(model):
        if isinstance(act, nn.Module) and act not in dims:
            dims[act] = -1 if isinstance(layer, nn.Linear) else 1
    return dims


def _outermost_inside(module: nn.Module) -> Iterator[SelfInitializing]:
    """The self-initialising modules strictly inside ``module`` that no other one inside contains."""
    for child in module.children():
        if isinstance(child, SelfInitializing):
            yield child
        else:
            yield from _outermost_inside(child)


class _Marked:
    """The modules and parameters inside modules marked as loaded (``mark_initialized``)."""

    def __init__(self, model: nn.Module) -> None:
        self.names: dict[str, str] = {}  # outermost marked module's name -> what set it
        self.modules: set[int] = set()
        self.params: set[int] = set()
        for name, module in model.named_modules():
            by = initialized_by(module)
            if by is None or id(module) in self.modules:
                continue
            self.names[name or type(model).__name__] = by
            self.modules.update(id(m) for m in module.modules())
            self.params.update(id(p) for p in module.parameters())

    def covers(self, module: nn.Module) -> bool:
        """Whether ``module`` lies inside a marked module or owns a parameter that does."""
        return id(module) in self.modules or any(
            id(p) in self.params for p in module.parameters(recurse=False)
        )


def marked_modules(model: nn.Module) -> dict[str, str]:
    """The outermost modules of ``model`` marked as loaded: name -> what set their weights."""
    return _Marked(model).names


def _gain_of(act: nn.Module | None) -> tuple[str, float]:
    """``(auto scheme, gain)`` for the activation a layer feeds."""
    kind = activation_kind(act)
    if kind is None:
        return "xavier_uniform", 1.0
    slope = None
    if isinstance(act, nn.LeakyReLU):
        slope = float(act.negative_slope)
    elif isinstance(act, nn.PReLU):
        slope = float(act.weight.detach().mean())
    return _AUTO_SCHEME[kind.init], nn.init.calculate_gain(kind.nonlinearity, slope)  # type: ignore[arg-type]  # a registered name, str; calculate_gain checks it


def _plan_layer(
    name: str, layer: nn.Module, feeds: Feeds, scheme: str, mode: Mode, gain: float | None
) -> InitRecord:
    shape = tuple(_weight(layer).shape)
    if isinstance(feeds, _Unknown):
        # The scheme and gain must not depend on the activation: without both, keep the weights.
        if scheme == "auto" or (scheme != "torch_default" and gain is None):
            return InitRecord(name, shape, "default", "unknown", None)
        chosen, act_gain, act_name = scheme, 1.0, "unknown"
    else:
        auto, act_gain = _gain_of(feeds)
        chosen = auto if scheme == "auto" else scheme
        act_name = "none" if feeds is None else type(feeds).__name__
    fan = mode if chosen.startswith("kaiming") else None
    return InitRecord(name, shape, chosen, act_name, act_gain if gain is None else float(gain), fan)


def _fill_layer(layer: nn.Module, rec: InitRecord, generator: torch.Generator | None) -> None:
    if rec.scheme == "default":
        return
    if rec.scheme == "torch_default":
        _torch_default(layer, int(torch.randint(2**62, (1,), generator=generator)))
        return
    assert rec.gain is not None
    weight = torch.empty(_weight(layer).shape, dtype=torch.float32)
    if rec.scheme == "xavier_uniform":
        nn.init.xavier_uniform_(weight, gain=rec.gain, generator=generator)
    elif rec.scheme == "xavier_normal":
        nn.init.xavier_normal_(weight, gain=rec.gain, generator=generator)
    elif rec.scheme == "orthogonal":  # Saxe et al., 2014, "Exact solutions ... deep linear networks"
        nn.init.orthogonal_(weight, gain=rec.gain, generator=generator)
    else:
        # kaiming_*: std = gain / sqrt(fan); the gain goes through "linear" so that the record's
        # gain (a LeakyReLU's slope included, or the caller's) is the one source of truth.
        fill = nn.init.kaiming_uniform_ if rec.scheme == "kaiming_uniform" else nn.init.kaiming_normal_
        fill(weight, mode=rec.mode or "fan_in", nonlinearity="linear", generator=generator)
        weight.mul_(rec.gain)
    _weight(layer).copy_(weight)
    bias = _bias(layer)
    if bias is not None:
        bias.zero_()


def _torch_default(layer: nn.Module, seed: int) -> None:
    """``layer.reset_parameters()`` drawn from the CPU generator alone, seeded with ``seed``.

    The reset runs on a CPU copy: on a CUDA layer it would draw from (and need seeding of) the CUDA
    generator, and ``torch.manual_seed`` reseeds every CUDA generator of the process.
    """
    cpu = copy.deepcopy(layer).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        cast(Callable[[], None], cpu.reset_parameters)()
    for name, param in layer.named_parameters(recurse=False):
        param.copy_(getattr(cpu, name))


def _reset_norms(model: nn.Module, marked: _Marked, skip: set[int] | None = None) -> None:
    """Norm scales to one and shifts to zero, outside marked modules and the modules in ``skip``."""
    for module in model.modules():
        if skip is not None and id(module) in skip:
            continue
        if marked.covers(module):
            continue
        if isinstance(module, NORM_TYPES) and getattr(module, "weight", None) is not None:
            _weight(module).fill_(1.0)
            bias = _bias(module)
            if bias is not None:
                bias.zero_()


def _units(model: nn.Module, children_output: bool) -> Iterator[tuple[str, nn.Module, Feeds | _Delegated]]:
    """The foreign weight layers (with what they feed) and self-initialising modules of ``model``."""
    if not children_output or isinstance(model, (nn.Sequential, SelfInitializing, *WEIGHT_LAYER_TYPES)):
        yield from _walk(model, None, "", expand=False)
        return
    for name, child in model.named_children():
        yield from _walk(child, None, name, expand=False)


def plan_module(
    model: nn.Module,
    scheme: Scheme = "auto",
    mode: Mode | None = None,
    gain: float | None = None,
    children_output: bool = False,
) -> list[InitRecord]:
    """What :func:`init_module` would do to ``model``, without touching it."""
    check_init_options(scheme, mode, gain)
    marked = _Marked(model)
    records = []
    for name, unit, feeds in _units(model, children_output):
        if marked.covers(unit):
            continue
        if isinstance(feeds, _Delegated):
            delegate = cast(SelfInitializing, unit)  # _walk delegates to self-initialising modules only
            records += [
                replace(r, layer=_join(name, r.layer)) for r in delegate.init_plan(scheme, mode, gain)
            ]
        else:
            records.append(_plan_layer(name, unit, feeds, scheme, mode or "fan_in", gain))
    return records


@torch.no_grad()
def init_module(
    model: nn.Module,
    scheme: Scheme = "auto",
    mode: Mode | None = None,
    gain: float | None = None,
    zero_init_residual: bool | None = None,
    generator: torch.Generator | None = None,
    children_output: bool = False,
) -> list[InitRecord]:
    """Initialise any module: each self-initialising module inside through its own ``init_weights``
    (in registration order, from the same generator), every other weight layer by the walk of the
    module docstring, every other norm to scale one and shift zero. Marked modules are left alone.

    The arguments are those of :meth:`SelfInitializing.init_weights`, and ``children_output``:
    ``model``'s children produce its outputs (a LightningModule's networks, whose outputs its loss
    reads), so what each of them returns feeds nothing nonlinear."""
    check_init_options(scheme, mode, gain)
    marked = _Marked(model)
    records: list[InitRecord] = []
    owned: set[int] = set()
    for name, unit, feeds in _units(model, children_output):
        if marked.covers(unit):
            continue
        if isinstance(feeds, _Delegated):
            delegate = cast(SelfInitializing, unit)  # _walk delegates to self-initialising modules only
            done = delegate.init_weights(scheme, mode, gain, zero_init_residual, generator)
            records += [replace(r, layer=_join(name, r.layer)) for r in done]
            owned.update(id(m) for m in unit.modules())
            continue
        rec = _plan_layer(name, unit, feeds, scheme, mode or "fan_in", gain)
        _fill_layer(unit, rec, generator)
        records.append(rec)
    _reset_norms(model, marked, owned)
    return records
