"""Fully connected building blocks: Linear → BatchNorm → activation → Dropout, and a residual block.

The classic recipe (Ioffe & Szegedy, 2015, "Batch Normalization", Sec. 3.2) normalises the layer's
pre-activation ``Wx`` and applies the nonlinearity afterwards; ``norm="after"`` is the common variant
that normalises the activation's output instead; ``norm="none"`` leaves normalisation out.
When a BatchNorm directly follows the Linear, the Linear has no bias: the norm subtracts the batch
mean, which cancels any bias, and its own shift ``beta`` takes the bias's role.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, cast

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.activations import make_activation
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation

__all__ = [
    "NORM_POSITIONS",
    "LinearBlock",
    "NormPosition",
    "ResidualMLPBlock",
    "check_dropout",
    "norm_activation_dropout",
]

NormPosition = Literal["before", "after", "none"]
NORM_POSITIONS: tuple[str, ...] = ("before", "after", "none")


def check_dropout(p: float, name: str = "dropout") -> float:
    """Return ``p`` if it is a valid dropout probability, else raise ``ConfigError``."""
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"{name} must be in [0, 1), got {p!r}")
    return float(p)


def check_norm(norm: str) -> str:
    if norm not in NORM_POSITIONS:
        raise ConfigError(f"norm must be one of {', '.join(NORM_POSITIONS)}, got {norm!r}")
    return norm


def norm_activation_dropout(
    width: int,
    norm: NormPosition,
    activation: str,
    dropout: float,
    activation_kwargs: dict[str, Any] | None = None,
    norm_type: type[nn.Module] = nn.BatchNorm1d,
    dropout_type: type[nn.Module] = nn.Dropout,
) -> list[nn.Module]:
    """The layers after a Linear/Conv: ``[norm] → activation → [norm] → [dropout]``.

    The norm goes ``"before"`` or ``"after"`` the activation, or nowhere (``"none"``); dropout 0 adds
    no layer. ``norm_type``/``dropout_type`` pick the 1-D or 2-D variants.
    """
    layers: list[nn.Module] = []
    if norm == "before":
        layers.append(norm_type(width))
    layers.append(make_activation(activation, **(activation_kwargs or {})))
    if norm == "after":
        layers.append(norm_type(width))
    if dropout > 0:
        layers.append(dropout_type(dropout))
    return layers


class LinearBlock(nn.Sequential):
    """``Linear → [BatchNorm1d] → activation → [BatchNorm1d] → [Dropout]``.

    A plain ``nn.Sequential``, so anything that walks Sequentials (weight init, hooks, export) sees
    each layer followed by the activation it feeds.

    Args:
        in_features: Width of the input.
        out_features: Width of the output.
        activation: Activation name, see :func:`lit_dl.nn.activation_names`.
        norm: Where the BatchNorm goes: ``"before"`` the activation (the classic recipe), ``"after"``
            it, or ``"none"``.
        dropout: Dropout probability after the activation, in ``[0, 1)``; 0 adds no layer.
        activation_kwargs: Options of the activation, e.g. ``{"negative_slope": 0.2}``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        activation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_norm(norm)
        check_dropout(dropout)
        linear = nn.Linear(in_features, out_features, bias=norm != "before")
        tail = norm_activation_dropout(out_features, norm, activation, dropout, activation_kwargs)
        super().__init__(linear, *tail)
        self.activation = activation


class ResidualMLPBlock(SelfInitializing):
    """``act(F(x) + shortcut(x))`` with ``F = Linear → BN → act → Linear → BN`` (He et al., 2016,
    "Deep Residual Learning", Sec. 3.2/3.3), followed by optional dropout.

    The shortcut is the identity when the widths match and a bias-free ``Linear`` (+ BatchNorm when
    norms are on) projection when they differ (the paper's option B).

    :meth:`init_weights` gives the branch's first Linear the init of its activation and the branch's
    last Linear and a projection shortcut that of ``act`` (they feed the sum, then ``act``); with
    ``zero_init_residual`` :meth:`zero_init_weight` starts at zero (Goyal et al., 2017, Sec. 5.1),
    so the block starts as ``act(shortcut(x))``.

    Attributes:
        branch: The residual function ``F``. Its last module is the norm (or, with ``norm="none"``, the
            Linear) whose weight :meth:`zero_init_weight` returns.
        shortcut: Identity or projection.
        act: The activation applied after the sum.

    Args:
        in_features: Width of the input.
        out_features: Width of the output.
        activation: Activation name.
        norm: ``"before"``/``"after"``/``"none"`` as in :class:`LinearBlock` (for ``"after"``, the
            branch's inner block normalises after its activation and the final norm stays on ``F``).
        dropout: Dropout probability after the block's activation.
        activation_kwargs: Options of the activation.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        activation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_norm(norm)
        check_dropout(dropout)
        use_norm = norm != "none"
        inner = LinearBlock(in_features, out_features, activation, norm, 0.0, activation_kwargs)
        branch: list[nn.Module] = [*inner, nn.Linear(out_features, out_features, bias=not use_norm)]
        if use_norm:
            branch.append(nn.BatchNorm1d(out_features))
        self.branch = nn.Sequential(*branch)
        if in_features == out_features:
            self.shortcut: nn.Module = nn.Identity()
        else:
            proj: list[nn.Module] = [nn.Linear(in_features, out_features, bias=not use_norm)]
            if use_norm:
                proj.append(nn.BatchNorm1d(out_features))
            self.shortcut = nn.Sequential(*proj)
        self.act = make_activation(activation, **(activation_kwargs or {}))
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.activation = activation

    def residual_branch_norm(self) -> nn.Module | None:
        """The last norm of the residual branch (``None`` without norms)."""
        last = self.branch[-1]
        return None if isinstance(last, nn.Linear) else last

    def zero_init_weight(self) -> Tensor:
        """The weight that, set to zero, makes the residual branch output zero (with a zero bias): the
        last norm's weight, or without norms the last Linear's weight."""
        return cast(Tensor, self.branch[-1].weight)

    def residual_zero_weights(self) -> Iterator[Tensor]:
        yield self.zero_init_weight()

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        yield from layers_with_activation(self.branch, self.act, "branch")
        yield from layers_with_activation(self.shortcut, self.act, "shortcut")

    def forward(self, x: Tensor) -> Tensor:
        # A new tensor, never `out += shortcut`: autograd still needs the branch output.
        out = self.branch(x) + self.shortcut(x)
        return self.drop(self.act(out))
