"""Convolutional building blocks: ``Conv2d → BatchNorm2d → activation`` and a plain ConvNet.

The norm position is selectable as in :class:`~lit_dl.nn.LinearBlock`: ``"before"`` the activation
(Ioffe & Szegedy, 2015, Sec. 3.2), ``"after"`` it, or ``"none"``. A convolution directly followed by a
BatchNorm has no bias: the norm subtracts the per-channel batch mean, which cancels any bias.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation
from lit_dl.nn.linear_blocks import NormPosition, check_dropout, check_norm, norm_activation_dropout

__all__ = ["ConvBlock", "ConvNet"]


class ConvBlock(nn.Sequential):
    """``Conv2d → [BatchNorm2d] → activation → [BatchNorm2d] → [Dropout2d]`` ("same" padding).

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output.
        kernel_size: Odd kernel size; padding ``kernel_size // 2`` keeps the spatial size at stride 1.
        stride: Stride of the convolution.
        activation: Activation name, see :func:`lit_dl.nn.activation_names`.
        norm: Where the BatchNorm goes: ``"before"`` the activation, ``"after"`` it, or ``"none"``.
        dropout: Channel dropout probability (``Dropout2d``) after the block, in ``[0, 1)``.
        activation_kwargs: Options of the activation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        activation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_norm(norm)
        check_dropout(dropout)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
        if stride < 1:
            raise ConfigError(f"stride must be >= 1, got {stride!r}")
        conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=norm != "before"
        )
        tail = norm_activation_dropout(
            out_channels, norm, activation, dropout, activation_kwargs, nn.BatchNorm2d, nn.Dropout2d
        )
        super().__init__(conv, *tail)
        self.activation = activation


class ConvNet(SelfInitializing):
    """A plain VGG-style ConvNet: stages of conv blocks, 2x2 max-pool between stages, global average
    pool, dropout, Linear head returning logits.

    :meth:`init_weights` gives each conv the init of its block's activation and the head Xavier
    with gain 1.

    Args:
        in_channels: Channels of the input images (1 for grey-scale, 3 for RGB).
        num_classes: Number of output logits.
        channels: Output channels of each stage, e.g. ``[32, 64, 128]``; the spatial size halves
            between consecutive stages.
        blocks_per_stage: Conv blocks in each stage.
        kernel_size: Odd kernel size of every convolution.
        activation: Activation name.
        norm: BatchNorm position in each block: ``"before"``/``"after"`` the activation, or ``"none"``.
        dropout: Dropout probability before the head, in ``[0, 1)``.
        activation_kwargs: Options of the activation.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        channels: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 2,
        kernel_size: int = 3,
        activation: str = "relu",
        norm: NormPosition = "before",
        dropout: float = 0.0,
        activation_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if not channels or any(c < 1 for c in channels):
            raise ConfigError(f"channels must be a non-empty list of integers >= 1, got {list(channels)!r}")
        if blocks_per_stage < 1:
            raise ConfigError(f"blocks_per_stage must be >= 1, got {blocks_per_stage!r}")
        check_dropout(dropout)
        layers: list[nn.Module] = []
        width = in_channels
        for i, c in enumerate(channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            for _ in range(blocks_per_stage):
                layers.append(ConvBlock(width, c, kernel_size, 1, activation, norm, 0.0, activation_kwargs))
                width = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)
        self.num_classes = num_classes

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        yield from layers_with_activation(self.features, prefix="features")
        yield "head", self.head, None  # logits

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))
