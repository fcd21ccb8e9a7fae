"""The plain-ConvNet image recipe."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from lit_dl.models.classification import ClassificationTask
from lit_dl.nn import ConvNet, NormPosition

__all__ = ["ConvNetClassifier"]


class ConvNetClassifier(ClassificationTask):
    """Classification of ``(C, H, W)`` images with a VGG-style :class:`~lit_dl.nn.ConvNet`: stages of
    ``Conv → BN → act`` blocks, a 2x2 max-pool between stages, global average pool, dropout, head.

    Args:
        in_channels: Channels of the input images (1 for digits/MNIST, 3 for CIFAR-10).
        channels: Output channels of each stage, e.g. ``[32, 64, 128]``.
        blocks_per_stage: Conv blocks per stage.
        kernel_size: Odd kernel size of every convolution.
        activation: Activation name: relu, leaky_relu, elu, gelu, silu, ...
        norm: BatchNorm ``"before"`` the activation (classic), ``"after"`` it, or ``"none"``.
        dropout: Dropout probability before the head, in ``[0, 1)``.
        activation_kwargs: Options of the activation, e.g. ``{negative_slope: 0.2}`` for leaky_relu.
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask` (``num_classes``,
            ``optimizer``, ``lr_scheduler``, ...).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 2,
        kernel_size: int = 3,
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        activation_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def build_backbone(self) -> nn.Module:
        return build_convnet(self.hparams, self.num_classes)


def build_convnet(hp: Mapping[str, Any], num_classes: int) -> ConvNet:
    """The :class:`ConvNet` a recipe's hyper-parameters describe (also ``ImageClassifier(arch=convnet)``'s)."""
    return ConvNet(
        in_channels=hp["in_channels"],
        num_classes=num_classes,
        channels=list(hp["channels"]),
        blocks_per_stage=hp["blocks_per_stage"],
        kernel_size=hp["kernel_size"],
        activation=hp["activation"],
        norm=hp["norm"],
        dropout=hp["dropout"],
        activation_kwargs=hp.get("activation_kwargs"),
    )
