"""The multilayer perceptron backbone of :class:`lit_dl.models.MLPClassifier`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation
from lit_dl.nn.linear_blocks import LinearBlock, NormPosition, ResidualMLPBlock, check_dropout, check_norm

__all__ = ["MLP"]


class MLP(SelfInitializing):
    """Flatten → hidden blocks → Linear head that returns logits (no softmax).

    :meth:`init_weights` gives each block's Linear the init of the block's activation (for a
    residual block: the activation after the sum) and the head Xavier with gain 1; with
    ``zero_init_residual`` the last norm (or Linear) of each residual branch starts at zero.

    Args:
        in_features: Number of input features after flattening (64 for the 8×8 digits).
        num_classes: Number of output logits.
        hidden_sizes: Width of each hidden block, e.g. ``[256, 256]``; empty gives a linear model.
        activation: Activation name, see :func:`lit_dl.nn.activation_names`.
        norm: BatchNorm position in each block: ``"before"``/``"after"`` the activation, or ``"none"``.
        dropout: Dropout probability after each hidden activation, in ``[0, 1)``.
        residual: Use :class:`~lit_dl.nn.ResidualMLPBlock` instead of :class:`~lit_dl.nn.LinearBlock`.
        activation_kwargs: Options of the activation, e.g. ``{"negative_slope": 0.2}``.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        residual: bool = False,
        activation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ConfigError(f"in_features must be >= 1, got {in_features!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if any(h < 1 for h in hidden_sizes):
            raise ConfigError(f"hidden_sizes must all be >= 1, got {list(hidden_sizes)!r}")
        check_norm(norm)
        check_dropout(dropout)
        block = ResidualMLPBlock if residual else LinearBlock
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden_sizes:
            layers.append(block(width, h, activation, norm, dropout, activation_kwargs))
            width = h
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.in_features = in_features
        self.num_classes = num_classes

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        yield from layers_with_activation(self.features, prefix="features")
        yield "head", self.head, None  # logits

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
