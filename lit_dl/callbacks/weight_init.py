"""Activation-aware weight initialisation as a Lightning callback."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.nn.layers import NORM_TYPES, is_residual_block, layers_with_activation

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

# activation class -> (scheme chosen by "auto", torch.nn.init nonlinearity name). Checked in order,
# so subclasses (a project's own ReLU subclass) match their parent. ReLU-shaped smooth activations
# (ELU, GELU, SiLU, Mish, Softplus) get He's ReLU gain; SELU gets LeCun's fan-in normal init
# (gain 1, Klambauer et al., 2017, "Self-Normalizing Neural Networks", Sec. 3).
_ACTIVATION_RULES: tuple[tuple[type[nn.Module], str, str], ...] = (
    (nn.Tanh, "xavier_uniform", "tanh"),
    (nn.Sigmoid, "xavier_uniform", "sigmoid"),
    (nn.Hardtanh, "xavier_uniform", "linear"),
    (nn.Identity, "xavier_uniform", "linear"),
    (nn.LeakyReLU, "kaiming_normal", "leaky_relu"),
    (nn.PReLU, "kaiming_normal", "leaky_relu"),
    (nn.SELU, "kaiming_normal", "linear"),
    (nn.ReLU, "kaiming_normal", "relu"),
    (nn.ReLU6, "kaiming_normal", "relu"),
    (nn.ELU, "kaiming_normal", "relu"),
    (nn.CELU, "kaiming_normal", "relu"),
    (nn.GELU, "kaiming_normal", "relu"),
    (nn.SiLU, "kaiming_normal", "relu"),
    (nn.Mish, "kaiming_normal", "relu"),
    (nn.Softplus, "kaiming_normal", "relu"),
)


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
    if act is None:
        return "xavier_uniform", "linear", None
    for cls, scheme, name in _ACTIVATION_RULES:
        if isinstance(act, cls):
            if isinstance(act, nn.LeakyReLU):
                return scheme, name, float(act.negative_slope)
            if isinstance(act, nn.PReLU):
                return scheme, name, float(act.weight.detach().mean())
            return scheme, name, None
    return "xavier_uniform", "linear", None


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

    Residual-block protocol: a block exposes ``residual_branch_norm()`` (returning the last norm of its residual
    branch, or ``None``) and ``act`` (the activation applied after the sum). With
    ``zero_init_residual`` that norm's scale starts at zero, so each block starts as its shortcut
    (Goyal et al., 2017, "Accurate, Large Minibatch SGD", Sec. 5.1).

    It acts in ``setup("fit")``: before a checkpoint is restored (a resumed run keeps the checkpoint's
    weights bit for bit) and before DDP broadcasts rank 0's weights; once per model object, so a
    second ``fit`` on the same model continues from the trained weights. The random numbers come from
    a private ``torch.Generator`` (drawn on the CPU, then copied to the layer's device), so every rank
    and every device type gets the same weights and the global RNG stream that feeds dropout and
    shuffling is left as it was. Its seed is ``seed``, or when ``None`` rank 0's
    ``torch.initial_seed()`` (the ``seed_everything`` value) broadcast to all ranks. Rank 0 logs a
    table of what was done.

    ``torch_default`` calls each layer's own ``reset_parameters()`` (PyTorch's default init, biases
    included) under the same seed. Activations applied functionally inside ``forward`` are invisible
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
        if self.verbose:
            rank_zero_info(_format_table(records))

    def plan(self, model: nn.Module) -> list[InitRecord]:
        """What :meth:`apply` would do to ``model``, without touching it."""
        records = []
        for name, layer, act in layers_with_activation(model):
            auto, nonlinearity, slope = _nonlinearity(act)
            scheme = auto if self.scheme == "auto" else self.scheme
            gain = nn.init.calculate_gain(nonlinearity, slope)  # type: ignore[arg-type]
            act_name = type(act).__name__ if act is not None else "none"
            records.append(InitRecord(name, tuple(layer.weight.shape), scheme, act_name, gain))
        return records

    @torch.no_grad()
    def apply(self, model: nn.Module, seed: int = 0) -> list[InitRecord]:
        """Initialise ``model`` in place with ``seed`` and return one record per weight layer."""
        generator = torch.Generator().manual_seed(int(seed))
        layers = {name: layer for name, layer, _ in layers_with_activation(model)}
        records = self.plan(model)
        for rec in records:
            layer = layers[rec.layer]
            if rec.scheme == "torch_default":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
                    layer.reset_parameters()
                continue
            weight = torch.empty(layer.weight.shape, dtype=torch.float32)
            self._fill(weight, rec, generator)
            layer.weight.copy_(weight)
            if layer.bias is not None:
                layer.bias.zero_()
        for module in model.modules():
            if isinstance(module, NORM_TYPES) and getattr(module, "weight", None) is not None:
                module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
        if self.zero_init_residual:
            for module in model.modules():
                norm = module.residual_branch_norm() if is_residual_block(module) else None
                if norm is not None and getattr(norm, "weight", None) is not None:
                    norm.weight.zero_()
        return records

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


def _format_table(records: list[InitRecord]) -> str:
    """A fixed-width text table of ``records`` (layer, shape, scheme, activation, gain)."""
    rows = [("layer", "shape", "scheme", "activation", "gain")]
    rows += [(r.layer, "x".join(map(str, r.shape)), r.scheme, r.activation, f"{r.gain:.4f}") for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "WeightInit:\n" + "\n".join(lines)
