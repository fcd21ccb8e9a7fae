"""The old two-architecture image recipe, kept so that run folders and checkpoints naming it load."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal

from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.models.classification import ClassificationTask
from lit_dl.models.convnet import ConvNetClassifier, build_convnet
from lit_dl.models.resnet import ResNetClassifier, build_resnet
from lit_dl.nn import NormPosition

__all__ = ["ImageClassifier"]

ARCH_RECIPES: dict[str, type[ClassificationTask]] = {"convnet": ConvNetClassifier, "resnet": ResNetClassifier}
"""The recipe that has exactly the options of each ``arch``."""


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


class ImageClassifier(ClassificationTask):
    """A :class:`~lit_dl.nn.ConvNet` or a :class:`~lit_dl.nn.ResNet`, chosen by ``arch``: the union
    of :class:`~lit_dl.models.ConvNetClassifier` and :class:`~lit_dl.models.ResNetClassifier`.

    New configs name the recipe of their architecture; this one stays so that run folders and
    checkpoints that name it still load. An option the chosen ``arch`` does not use must keep its
    default: ``arch: resnet`` with ``dropout: 0.5`` is an error naming every such option, never a
    network that silently has no dropout.

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

    Raises:
        ConfigError: ``arch`` is unknown, or an option of the other architecture differs from its default.
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
        if arch not in ARCH_RECIPES:
            raise ConfigError(f"arch must be 'convnet' or 'resnet', got {arch!r}")
        given = {
            "channels": channels,
            "blocks_per_stage": blocks_per_stage,
            "kernel_size": kernel_size,
            "norm": norm,
            "dropout": dropout,
            "depth": depth,
            "width": width,
            "stem": stem,
            "preact": preact,
            "zero_init_residual": zero_init_residual,
        }
        _refuse_ignored(arch, given)
        super().__init__(**kwargs)

    def build_backbone(self) -> nn.Module:
        build = build_convnet if self.hparams["arch"] == "convnet" else build_resnet
        return build(self.hparams, self.num_classes)


def _refuse_ignored(arch: str, given: dict[str, Any]) -> None:
    """Raise ``ConfigError`` naming every option in ``given`` that ``arch`` ignores and that differs
    from its default (a saved config repeats the defaults of both architectures)."""
    recipe = ARCH_RECIPES[arch]
    own = inspect.signature(recipe.__init__).parameters
    defaults = inspect.signature(ImageClassifier.__init__).parameters
    ignored = [
        f"{name}={_plain(value)!r}"
        for name, value in given.items()
        if name not in own and _plain(value) != _plain(defaults[name].default)
    ]
    if ignored:
        raise ConfigError(
            f"ImageClassifier with arch={arch!r} ignores {', '.join(ignored)}: drop them, or use "
            f"lit_dl.models.{recipe.__name__}, which takes only the options of that architecture"
        )
