"""ResNet for CIFAR-size and ImageNet-size images (He et al., 2016a; pre-activation: He et al., 2016b)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.activations import make_activation
from lit_dl.nn.init import Feeds, Mode, SelfInitializing, layers_with_activation
from lit_dl.nn.layers import is_activation
from lit_dl.nn.resnet_blocks import BasicBlock, BottleneckBlock, ResidualBlock

__all__ = ["RESNET_DEPTHS", "ResNet"]

# depth -> (block class, blocks per stage), He et al. (2016a), Table 1.
RESNET_DEPTHS: dict[int, tuple[type[ResidualBlock], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (BottleneckBlock, (3, 4, 6, 3)),
}


class ResNet(SelfInitializing):
    """Stem → four stages of residual blocks (widths ``width · 1, 2, 4, 8``, stride 2 from the second
    stage on) → [BN → act] → global average pool → Linear head returning logits.

    Stems: ``"cifar"`` is one 3x3 conv at stride 1 without max-pool (for 32x32 and smaller inputs);
    ``"imagenet"`` is a 7x7 conv at stride 2 and a 3x3 max-pool at stride 2. In the pre-activation
    form the CIFAR stem is the bare conv (the first block normalises and activates it) and a final
    ``BN → act`` comes before the pool (He et al., 2016b, Sec. 3.1); the ImageNet stem keeps its
    ``BN → act`` before the max-pool, and the first block, fed by it, does not normalise and activate
    its input again (the paper's code, fb.resnet.torch ``preresnet.lua``: its ``'no_preact'`` block).

    With ``depth=18``, ``width=64``, ``stem="cifar"``, 3 input channels and 10 classes the network has
    11,173,962 parameters, the usual "ResNet-18 for CIFAR-10".

    Args:
        in_channels: Channels of the input images.
        num_classes: Number of output logits.
        depth: 18 or 34 (basic blocks) or 50 (bottleneck blocks).
        width: Channels of the first stage (64 in the paper).
        stem: ``"cifar"`` or ``"imagenet"``, see above.
        preact: Pre-activation blocks instead of the original post-activation ones.
        zero_init_residual: Start every block as the identity map (Goyal et al., 2017, Sec. 5.1):
            zero the weight of the norm that ends each residual branch; in the pre-activation form,
            whose branch ends in a conv, zero that conv's weight instead. Also what
            :meth:`init_weights` does when its caller does not say.
        activation: Activation name.

    The network initialises itself when built: ``init_weights()`` from the global RNG, whose
    ``"auto"`` scheme gives every conv He et al. (2015) normal init in fan-out mode (as torchvision;
    every conv of a ResNet reaches the activation, through norms and sums) and the head Xavier
    with gain 1. :class:`lit_dl.callbacks.WeightInit` calls ``init_weights`` again with its options.
    """

    init_mode: Mode = "fan_out"

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 10,
        depth: Literal[18, 34, 50] = 18,
        width: int = 64,
        stem: Literal["cifar", "imagenet"] = "cifar",
        preact: bool = False,
        zero_init_residual: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if depth not in RESNET_DEPTHS:
            raise ConfigError(f"depth must be one of {', '.join(map(str, RESNET_DEPTHS))}, got {depth!r}")
        if stem not in ("cifar", "imagenet"):
            raise ConfigError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels!r}")
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if width < 1:
            raise ConfigError(f"width must be >= 1, got {width!r}")
        block, counts = RESNET_DEPTHS[depth]
        if stem == "cifar":
            layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)]
            if not preact:
                layers += [nn.BatchNorm2d(width), make_activation(activation)]
        else:
            layers = [
                nn.Conv2d(in_channels, width, 7, 2, 3, bias=False),
                nn.BatchNorm2d(width),
                make_activation(activation),
                nn.MaxPool2d(3, 2, 1),
            ]
        self.stem = nn.Sequential(*layers)
        stages: list[nn.Module] = []
        channels = width
        for i, n in enumerate(counts):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                # The ImageNet stem ends in BN → act → max-pool: the first block must not repeat BN → act.
                pre_activate = not (stem == "imagenet" and i == 0 and j == 0)
                blocks.append(block(channels, planes, stride, preact, activation, pre_activate))
                channels = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final = (
            nn.Sequential(nn.BatchNorm2d(channels), make_activation(activation)) if preact else nn.Identity()
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_classes)
        self.num_classes = num_classes
        self.zero_init_residual = zero_init_residual
        self.init_weights()

    def residual_blocks(self) -> list[ResidualBlock]:
        """Every residual block, in order."""
        return [m for m in self.modules() if isinstance(m, ResidualBlock)]

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        # The pre-activation CIFAR stem is a bare conv: the first block's act(BN(.)) follows it.
        act = next((m for m in self.modules() if is_activation(m)), None)
        yield from layers_with_activation(self.stem, act, "stem")
        yield from layers_with_activation(self.stages, prefix="stages")
        yield "head", self.head, None  # logits

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.pool(self.final(self.stages(self.stem(x)))))
