"""The image-classification recipe: a plain ConvNet or a ResNet, chosen from YAML."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.models.classification import ClassificationTask
from lit_dl.nn import ConvNet, NormPosition, ResNet

__all__ = ["ImageClassifier"]


class ImageClassifier(ClassificationTask):
    """Classification of ``(C, H, W)`` images with a :class:`~lit_dl.nn.ConvNet` or a
    :class:`~lit_dl.nn.ResNet`.

    Options marked *convnet* or *resnet* apply to that architecture only; the others to both.

    Args:
        arch: ``"convnet"`` (VGG-style stages of conv blocks) or ``"resnet"``.
        in_channels: Channels of the input images (1 for digits/MNIST, 3 for CIFAR-10).
        activation: Activation name: relu, leaky_relu, elu, gelu, silu, ...
        channels: *convnet*: output channels of each stage.
        blocks_per_stage: *convnet*: conv blocks per stage.
        kernel_size: *convnet*: odd kernel size.
        norm: *convnet*: BatchNorm ``"before"`` the activation, ``"after"`` it, or ``"none"``.
        dropout: *convnet*: dropout probability before the head.
        depth: *resnet*: 18, 34 or 50.
        width: *resnet*: channels of the first stage (64 in the paper).
        stem: *resnet*: ``"cifar"`` (3x3 conv, no max-pool) or ``"imagenet"`` (7x7/2 conv, max-pool).
        preact: *resnet*: pre-activation blocks (He et al., 2016b).
        zero_init_residual: *resnet*: start each residual block as the identity (Goyal et al., 2017).
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask` (``num_classes``,
            ``optimizer``, ``lr_scheduler``, ...).
    """

    def __init__(
        self,
        arch: Literal["convnet", "resnet"] = "convnet",
        in_channels: int = 1,
        activation: str = "relu",
        channels: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 2,
        kernel_size: int = 3,
        norm: NormPosition = "before",
        dropout: float = 0.0,
        depth: Literal[18, 34, 50] = 18,
        width: int = 64,
        stem: Literal["cifar", "imagenet"] = "cifar",
        preact: bool = False,
        zero_init_residual: bool = False,
        **kwargs: Any,
    ) -> None:
        if arch not in ("convnet", "resnet"):
            raise ConfigError(f"arch must be 'convnet' or 'resnet', got {arch!r}")
        super().__init__(**kwargs)

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        if hp.arch == "convnet":
            return ConvNet(
                in_channels=hp.in_channels,
                num_classes=self.num_classes,
                channels=list(hp.channels),
                blocks_per_stage=hp.blocks_per_stage,
                kernel_size=hp.kernel_size,
                activation=hp.activation,
                norm=hp.norm,
                dropout=hp.dropout,
            )
        return ResNet(
            in_channels=hp.in_channels,
            num_classes=self.num_classes,
            depth=hp.depth,
            width=hp.width,
            stem=hp.stem,
            preact=hp.preact,
            zero_init_residual=hp.zero_init_residual,
            activation=hp.activation,
        )
