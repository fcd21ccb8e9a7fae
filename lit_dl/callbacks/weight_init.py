"""Activation-aware weight initialisation as a Lightning callback."""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn.init_marks import initialized_by
from lit_dl.nn.layers import NORM_TYPES, activation_kind, is_residual_block, layers_with_activation

__all__ = ["SCHEMES", "InitRecord", "Scheme", "WeightInit"]

Scheme = Literal[
    "auto",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "torch_default",
]
SCHEMES: tuple[str, ...] = (
    "auto",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "torch_default",
)

# The scheme "auto" picks for each init family of lit_dl.nn.layers.ActivationKind.
_AUTO_SCHEME = {"he": "kaiming_normal", "lecun": "kaiming_normal", "xavier": "xavier_uniform"}


@dataclass(frozen=True)
class InitRecord:
    """What :class:`WeightInit` did to one layer: its name, weight shape, scheme, activation and gain."""

    layer: str
    shape: tuple[int, ...]
    scheme: str
    activation: str
    gain: float


def _nonlinearity(act: nn.Module | None) -> tuple[str, str, float | None]:
    """``(auto scheme, nonlinearity name, negative slope)`` for the activation a layer feeds."""
    kind = activation_kind(act)
    if kind is None:
        return "xavier_uniform", "linear", None
    slope = None
    if isinstance(act, nn.LeakyReLU):
        slope = float(act.negative_slope)
    elif isinstance(act, nn.PReLU):
        slope = float(act.weight.detach().mean())
    return _AUTO_SCHEME[kind.init], kind.nonlinearity, slope


def _protected(model: nn.Module) -> tuple[dict[str, str], set[int], set[int]]:
    """Modules marked with :func:`~lit_dl.nn.init_marks.mark_initialized`: ``(outermost marked
    name -> who set it, ids of every module inside them, ids of every parameter inside them)``."""
    marked: dict[str, str] = {}
    modules: set[int] = set()
    params: set[int] = set()
    for name, module in model.named_modules():
        by = initialized_by(module)
        if by is None or id(module) in modules:
            continue
        marked[name or type(model).__name__] = by
        modules.update(id(m) for m in module.modules())
        params.update(id(p) for p in module.parameters())
    return marked, modules, params


class WeightInit(L.Callback):
    """Initialise every Linear and Conv1d/2d/3d weight for the activation that follows it.

    With ``scheme="auto"`` (the classic recipe): layers feeding tanh, sigmoid or nothing nonlinear
    get Xavier/Glorot uniform with that activation's gain (Glorot & Bengio, 2010, "Understanding the
    difficulty of training deep feedforward neural networks", Eq. 16); layers feeding ReLU or
    LeakyReLU get He/Kaiming normal with that block's negative slope (He et al., 2015, "Delving Deep
    into Rectifiers", Sec. 2.2). A classifier head followed by nothing gets Xavier with gain 1.
    A forced scheme uses the same gain. Biases start at zero, norm scales at one and shifts at zero.

    The activation is inferred from the module tree (see :mod:`lit_dl.nn.layers`): the next
    activation after the layer in an ``nn.Sequential``, skipping norm, dropout and pooling; for a
    residual block, the block's ``act`` after the sum.

    Residual-block protocol: a block exposes ``zero_init_weight()`` (the weight that, set to zero,
    zeroes its residual branch: the norm ending the branch, or the last conv of a pre-activation
    branch) and ``act`` (the activation applied after the sum). With ``zero_init_residual`` that
    weight starts at zero, so each block starts as its shortcut (Goyal et al., 2017, "Accurate,
    Large Minibatch SGD", Sec. 5.1).

    Initialisation belongs in one place: a module marked with
    :func:`lit_dl.nn.init_marks.mark_initialized` (a network that initialises itself, such as
    :class:`lit_dl.nn.ResNet`, or weights loaded from a checkpoint) is left alone with everything
    inside it, including parameters it shares with other modules; rank 0 logs what was left alone.

    It acts in ``setup("fit")``: before a checkpoint is restored (a resumed run keeps the checkpoint's
    weights bit for bit) and before DDP broadcasts rank 0's weights; once per model object, so a
    second ``fit`` on the same model continues from the trained weights. The random numbers come from
    a private ``torch.Generator`` (drawn on the CPU, then copied to the layer's device), so every rank
    and every device type gets the same weights and the global RNG stream that feeds dropout and
    shuffling is left as it was. Its seed is ``seed``, or when ``None`` rank 0's
    ``torch.initial_seed()`` (the ``seed_everything`` value) broadcast to all ranks. Rank 0 logs a
    table of what was done.

    ``torch_default`` calls each layer's own ``reset_parameters()`` (PyTorch's default init, biases
    included) on a CPU copy of the layer, drawing from the CPU generator alone (seeded from the
    same seed), so no CUDA generator is touched. Activations applied functionally inside ``forward`` are invisible
    to the inference; force a scheme for such models.

    Args:
        scheme: ``"auto"`` (by activation, as above) or one scheme for every layer: ``xavier_uniform``,
            ``xavier_normal``, ``kaiming_uniform``, ``kaiming_normal``, ``orthogonal``, ``torch_default``.
        mode: Which fan He/Kaiming init keeps the variance of: ``"fan_in"`` (forward activations) or
            ``"fan_out"`` (backward gradients).
        zero_init_residual: Start the last norm of every residual branch at zero scale.
        seed: Seed of the initialisation; ``None`` takes the run's seed (see above).
        verbose: Log the table of initialised layers (rank 0, once).
    """

    def __init__(
        self,
        scheme: Scheme = "auto",
        mode: Literal["fan_in", "fan_out"] = "fan_in",
        zero_init_residual: bool = False,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        if scheme not in SCHEMES:
            raise ConfigError(f"unknown weight init scheme {scheme!r}; valid names are: {', '.join(SCHEMES)}")
        if mode not in ("fan_in", "fan_out"):
            raise ConfigError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
        self.scheme = scheme
        self.mode = mode
        self.zero_init_residual = zero_init_residual
        self.seed = seed
        self.verbose = verbose
        self._done: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def __getstate__(self) -> dict:
        # A WeakSet does not pickle (ddp_spawn pickles callbacks); a new process starts afresh.
        state = self.__dict__.copy()
        state["_done"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._done = weakref.WeakSet()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or pl_module in self._done:
            return
        seed = self.seed if self.seed is not None else torch.initial_seed()
        seed = trainer.strategy.broadcast(seed, src=0)
        records = self.apply(pl_module, seed)
        self._done.add(pl_module)
        skipped = self.skipped(pl_module)
        if skipped:
            listed = "; ".join(f"{name} (set by {by})" for name, by in skipped.items())
            rank_zero_info(f"WeightInit: left alone, already initialised: {listed}")
        if self.verbose and records:
            rank_zero_info(_format_table(records))

    def skipped(self, model: nn.Module) -> dict[str, str]:
        """The marked modules :meth:`apply` leaves alone: module name -> what set their weights."""
        return _protected(model)[0]

    def plan(self, model: nn.Module) -> list[InitRecord]:
        """What :meth:`apply` would do to ``model``, without touching it (marked modules left out)."""
        return [rec for rec, _ in self._plan(model)]

    def _plan(self, model: nn.Module) -> list[tuple[InitRecord, nn.Module]]:
        _, modules, params = _protected(model)
        planned = []
        for name, layer, act in layers_with_activation(model):
            if _is_protected(layer, modules, params):
                continue
            auto, nonlinearity, slope = _nonlinearity(act)
            scheme = auto if self.scheme == "auto" else self.scheme
            gain = nn.init.calculate_gain(nonlinearity, slope)  # type: ignore[arg-type]
            act_name = type(act).__name__ if act is not None else "none"
            planned.append((InitRecord(name, tuple(layer.weight.shape), scheme, act_name, gain), layer))
        return planned

    @torch.no_grad()
    def apply(self, model: nn.Module, seed: int = 0) -> list[InitRecord]:
        """Initialise ``model`` in place with ``seed`` and return one record per weight layer."""
        generator = torch.Generator().manual_seed(int(seed))
        _, modules, params = _protected(model)
        planned = self._plan(model)
        for rec, layer in planned:
            if rec.scheme == "torch_default":
                _torch_default(layer, int(torch.randint(2**62, (1,), generator=generator)))
                continue
            weight = torch.empty(layer.weight.shape, dtype=torch.float32)
            self._fill(weight, rec, generator)
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.zero_()
        for module in model.modules():
            if _is_protected(module, modules, params):
                continue
            if isinstance(module, NORM_TYPES) and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
        if self.zero_init_residual:
            for module in model.modules():
                target = module.zero_init_weight() if is_residual_block(module) else None
                if target is not None and id(module) not in modules and id(target) not in params:
                    target.zero_()
        return [rec for rec, _ in planned]

    def _fill(self, weight: torch.Tensor, rec: InitRecord, generator: torch.Generator) -> None:
        if rec.scheme == "xavier_uniform":
            nn.init.xavier_uniform_(weight, gain=rec.gain, generator=generator)
        elif rec.scheme == "xavier_normal":
            nn.init.xavier_normal_(weight, gain=rec.gain, generator=generator)
        elif rec.scheme == "orthogonal":  # Saxe et al., 2014, "Exact solutions ... deep linear networks"
            nn.init.orthogonal_(weight, gain=rec.gain, generator=generator)
        else:
            # kaiming_*: std = gain / sqrt(fan); passing the gain through "linear" keeps one source of
            # truth for it (including a LeakyReLU's slope) in plan().
            fill = nn.init.kaiming_uniform_ if rec.scheme == "kaiming_uniform" else nn.init.kaiming_normal_
            fill(weight, mode=self.mode, nonlinearity="linear", generator=generator)
            weight.mul_(rec.gain)


def _is_protected(module: nn.Module, modules: set[int], params: set[int]) -> bool:
    """Whether ``module`` lies inside a marked module or owns a parameter that does."""
    return id(module) in modules or any(id(p) in params for p in module.parameters(recurse=False))


def _torch_default(layer: nn.Module, seed: int) -> None:
    """``layer.reset_parameters()`` drawn from the CPU generator alone, seeded with ``seed``.

    The reset runs on a CPU copy: on a CUDA layer it would draw from (and need seeding of) the CUDA
    generator, and ``torch.manual_seed`` reseeds every CUDA generator of the process.
    """
    cpu = copy.deepcopy(layer).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        cpu.reset_parameters()
    for name, param in layer.named_parameters(recurse=False):
        param.copy_(getattr(cpu, name))


def _format_table(records: list[InitRecord]) -> str:
    """A fixed-width text table of ``records`` (layer, shape, scheme, activation, gain)."""
    rows = [("layer", "shape", "scheme", "activation", "gain")]
    rows += [(r.layer, "x".join(map(str, r.shape)), r.scheme, r.activation, f"{r.gain:.4f}") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "WeightInit:\n" + "\n".join(lines)
