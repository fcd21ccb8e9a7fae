"""Residual blocks of ResNet: basic (two 3x3 convs) and bottleneck (1x1 → 3x3 → 1x1), each in the
post-activation form of He et al. (2016a, "Deep Residual Learning", Fig. 2/5) and the pre-activation
form of He et al. (2016b, "Identity Mappings in Deep Residual Networks", Fig. 1b/4e).

The documented difference between the two forms:

- post-activation: ``out = act(F(x) + shortcut(x))`` with ``F = conv → BN → act → … → conv → BN``;
  the block's output has passed an activation (non-negative for ReLU). The last module of ``F``
  is a norm, which :meth:`residual_branch_norm` returns; its weight is :meth:`zero_init_weight`.
- pre-activation: ``h = act(BN(x))``, ``out = F(h) + shortcut``, ``F = conv → BN → act → … → conv``;
  nothing follows the sum, so an identity shortcut carries ``x`` unchanged (negative values too).
  ``F`` ends in a conv, so :meth:`residual_branch_norm` returns ``None`` and :meth:`zero_init_weight`
  is that conv's weight. A projection shortcut
  reads the pre-activated ``h``, as in the paper's code. A block built with ``pre_activate=False``
  has no ``act(BN(x))`` of its own (``h = x``): the first block after the ImageNet stem, whose
  ``BN → act → max-pool`` has just normalised and activated its input (the paper's code,
  fb.resnet.torch ``preresnet.lua``, builds that block as ``'no_preact'``).

The shortcut is the identity when shape is kept, otherwise a strided 1x1 conv (+ BN in the
post-activation form): option B of He et al. (2016a, Sec. 3.3). Bottleneck blocks put the stride on
the 3x3 conv (as torchvision's "ResNet v1.5").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

from torch import Tensor, nn

from lit_dl.nn.activations import make_activation
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation
from lit_dl.nn.layers import is_activation

__all__ = ["BasicBlock", "BottleneckBlock", "ResidualBlock"]


def _conv(in_ch: int, out_ch: int, kernel_size: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding=kernel_size // 2, bias=False)


class ResidualBlock(SelfInitializing):
    """Common forward pass and initialisation of :class:`BasicBlock` and :class:`BottleneckBlock`.

    :meth:`init_weights` gives every conv the init of the activation its output reaches: inside the
    branch the next one; the branch's last conv and a projection shortcut feed the sum, which feeds
    ``act`` (post-activation) or the next block's ``act(BN(·))`` (pre-activation, the same kind of
    activation as this block's). With ``zero_init_residual`` :meth:`zero_init_weight` starts at zero.

    Attributes:
        branch: The residual function ``F`` (``nn.Sequential``).
        shortcut: Identity or projection.
        pre: ``BN → act`` applied to the input in the pre-activation form, else ``nn.Identity``.
        act: Activation after the sum in the post-activation form, else ``nn.Identity``.

    Args:
        in_channels: Channels of the input.
        out_channels: Channels of the output (a projection shortcut is used when they differ).
        stride: Stride of the block (a projection shortcut is used when it is not 1).
        preact: Pre-activation form instead of post-activation.
        activation: Activation name.
        pre_activate: Pre-activation form only: apply ``act(BN(x))`` to the input; ``False`` when
            what feeds the block has just done so (see the module docstring).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        preact: bool,
        activation: str,
        pre_activate: bool = True,
    ) -> None:
        super().__init__()
        self.preact = preact
        self.pre: nn.Module = (
            nn.Sequential(nn.BatchNorm2d(in_channels), make_activation(activation))
            if preact and pre_activate
            else nn.Identity()
        )
        self.act: nn.Module = nn.Identity() if preact else make_activation(activation)
        self.projects = stride != 1 or in_channels != out_channels
        if not self.projects:
            self.shortcut: nn.Module = nn.Identity()
        elif preact:
            self.shortcut = _conv(in_channels, out_channels, 1, stride)
        else:
            self.shortcut = nn.Sequential(
                _conv(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels)
            )
        self.branch = nn.Sequential()

    def _layers(self, convs: list[nn.Conv2d], activation: str) -> nn.Sequential:
        """``conv → BN → act → … → conv [→ BN]``: the last conv is followed by a BN only post-activation."""
        layers: list[nn.Module] = []
        for i, conv in enumerate(convs):
            layers.append(conv)
            last = i == len(convs) - 1
            if not (last and self.preact):
                layers.append(nn.BatchNorm2d(conv.out_channels))
            if not last:
                layers.append(make_activation(activation))
        return nn.Sequential(*layers)

    def residual_branch_norm(self) -> nn.Module | None:
        """The norm that ends the residual branch (zero its weight and the block starts as the
        identity map, Goyal et al., 2017, Sec. 5.1), or ``None`` when the branch ends in a conv
        (pre-activation form)."""
        last = self.branch[-1]
        return None if isinstance(last, nn.Conv2d) else last

    def zero_init_weight(self) -> Tensor:
        """The weight that, set to zero, makes the residual branch output zero, so the block starts as
        its shortcut (Goyal et al., 2017, Sec. 5.1): the branch's last norm weight (post-activation)
        or its last conv weight (pre-activation)."""
        norm = self.residual_branch_norm()
        return cast(Tensor, norm.weight) if norm is not None else self.last_conv().weight

    def residual_zero_weights(self) -> Iterator[Tensor]:
        yield self.zero_init_weight()

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        # Pre-activation: nothing follows the sum here; the next block's act(BN(.)) (or the network's
        # final BN → act) does, an activation of this block's kind, which the branch's own stands for.
        after_sum = next((m for m in self.branch if is_activation(m)), None) if self.preact else self.act
        yield from layers_with_activation(self.branch, after_sum, "branch")
        yield from layers_with_activation(self.shortcut, after_sum, "shortcut")

    def last_conv(self) -> nn.Conv2d:
        """The branch's last convolution."""
        return [m for m in self.branch if isinstance(m, nn.Conv2d)][-1]

    def forward(self, x: Tensor) -> Tensor:
        h = self.pre(x)
        skip = self.shortcut(h if self.preact else x) if self.projects else x
        # A new tensor, never `out += skip`: autograd still needs the branch output.
        return self.act(self.branch(h) + skip)


class BasicBlock(ResidualBlock):
    """Two 3x3 convs (ResNet-18/34).

    Args:
        in_channels: Channels of the input.
        planes: Channels of the convs; the output has ``planes`` channels.
        stride: Stride of the first conv (2 halves the spatial size).
        preact: Pre-activation form instead of post-activation.
        activation: Activation name.
        pre_activate: Pre-activation form only: ``act(BN(x))`` on the input (see the module docstring).
    """

    expansion = 1

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        preact: bool = False,
        activation: str = "relu",
        pre_activate: bool = True,
    ) -> None:
        super().__init__(in_channels, planes, stride, preact, activation, pre_activate)
        self.branch = self._layers(
            [_conv(in_channels, planes, 3, stride), _conv(planes, planes, 3)], activation
        )


class BottleneckBlock(ResidualBlock):
    """1x1 reduce → 3x3 → 1x1 expand to ``4 · planes`` channels (ResNet-50).

    Args:
        in_channels: Channels of the input.
        planes: Channels of the inner convs; the output has ``4 · planes`` channels.
        stride: Stride of the 3x3 conv.
        preact: Pre-activation form instead of post-activation.
        activation: Activation name.
        pre_activate: Pre-activation form only: ``act(BN(x))`` on the input (see the module docstring).
    """

    expansion = 4

    def __init__(
        self,
        in_channels: int,
        planes: int,
        stride: int = 1,
        preact: bool = False,
        activation: str = "relu",
        pre_activate: bool = True,
    ) -> None:
        super().__init__(in_channels, planes * self.expansion, stride, preact, activation, pre_activate)
        convs = [
            _conv(in_channels, planes, 1),
            _conv(planes, planes, 3, stride),
            _conv(planes, planes * 4, 1),
        ]
        self.branch = self._layers(convs, activation)
