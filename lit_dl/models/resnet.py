"""The ResNet image recipe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch import nn

from lit_dl.models.classification import ClassificationTask
from lit_dl.nn import ResNet

__all__ = ["ResNetClassifier"]


class ResNetClassifier(ClassificationTask):
    """Classification of ``(C, H, W)`` images with a :class:`~lit_dl.nn.ResNet` (He et al., 2016a;
    pre-activation: He et al., 2016b). The network initialises itself (He normal, fan-out).

    Args:
        in_channels: Channels of the input images (3 for CIFAR-10, 1 for digits/MNIST).
        depth: 18 or 34 (basic blocks) or 50 (bottleneck blocks).
        width: Channels of the first stage (64 in the paper).
        stem: ``"cifar"`` (3x3 conv, no max-pool; for 32x32 and smaller) or ``"imagenet"`` (7x7/2
            conv, 3x3/2 max-pool).
        preact: Pre-activation blocks (He et al., 2016b) instead of post-activation ones.
        zero_init_residual: Start each residual block as the identity map (Goyal et al., 2017, Sec. 5.1).
        activation: Activation name: relu, leaky_relu, elu, gelu, silu, ...
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask` (``num_classes``,
            ``optimizer``, ``lr_scheduler``, ...).
    """

    def __init__(
        self,
        in_channels: int = 3,
        depth: Literal[18, 34, 50] = 18,
        width: int = 64,
        stem: Literal["cifar", "imagenet"] = "cifar",
        preact: bool = False,
        zero_init_residual: bool = False,
        activation: str = "relu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def build_backbone(self) -> nn.Module:
        return build_resnet(self.hparams, self.num_classes)


def build_resnet(hp: Mapping[str, Any], num_classes: int) -> ResNet:
    """The :class:`ResNet` a recipe's hyper-parameters describe (also ``ImageClassifier(arch=resnet)``'s)."""
    return ResNet(
        in_channels=hp["in_channels"],
        num_classes=num_classes,
        depth=hp["depth"],
        width=hp["width"],
        stem=hp["stem"],
        preact=hp["preact"],
        zero_init_residual=hp["zero_init_residual"],
        activation=hp["activation"],
    )
