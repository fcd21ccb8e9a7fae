"""The multilayer-perceptron recipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, cast

from torch import nn

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.input_check import check_input_features
from lit_dl.nn import MLP, NormPosition

__all__ = ["MLPClassifier"]


class _MLPOptions(Protocol):
    """``MLPClassifier``'s own arguments as ``self.hparams`` holds them (typed reads of them)."""

    in_features: int
    hidden_sizes: Sequence[int]
    activation: str
    norm: NormPosition
    dropout: float
    residual: bool
    activation_kwargs: dict[str, Any] | None


class MLPClassifier(ClassificationTask):
    """Classification with an MLP: ``Linear → BatchNorm → activation → Dropout`` blocks, optionally residual.

    Args:
        in_features: Number of input features after flattening (64 for the 8×8 digits).
        hidden_sizes: Width of each hidden block.
        activation: Activation name: relu, leaky_relu, elu, gelu, silu, sigmoid, tanh, softplus, identity.
        norm: BatchNorm ``"before"`` the activation (classic), ``"after"`` it, or ``"none"``.
        dropout: Dropout probability after each hidden activation, in ``[0, 1)``.
        residual: Use residual blocks (``x + F(x)``, projection when widths differ).
        activation_kwargs: Options of the activation, e.g. ``{negative_slope: 0.2}`` for leaky_relu.
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask` (``num_classes``,
            ``optimizer``, ``lr_scheduler``, ``l1``, ...).
    """

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        residual: bool = False,
        activation_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        check_input_features(getattr(self.trainer, "datamodule", None), self._options.in_features)

    @property
    def _options(self) -> _MLPOptions:
        """This recipe's own arguments (typed): what :meth:`build_backbone` builds from."""
        return cast(_MLPOptions, self.hparams)

    def build_backbone(self) -> nn.Module:
        hp = self._options
        return MLP(
            in_features=hp.in_features,
            num_classes=self.num_classes,
            hidden_sizes=list(hp.hidden_sizes),
            activation=hp.activation,
            norm=hp.norm,
            dropout=hp.dropout,
            residual=hp.residual,
            activation_kwargs=hp.activation_kwargs,
        )
