"""Plain ``torch.nn`` building blocks (no Lightning): take them alone into any project."""

from lit_dl.nn.activations import ACTIVATIONS, activation_names, make_activation, register_activation
from lit_dl.nn.blocks import NORM_POSITIONS, LinearBlock, NormPosition, ResidualMLPBlock, check_dropout
from lit_dl.nn.conv import ConvBlock, ConvNet
from lit_dl.nn.mlp import MLP
from lit_dl.nn.onehot import OneHot, one_hot
from lit_dl.nn.residual_blocks import BasicBlock, BottleneckBlock, ResidualBlock
from lit_dl.nn.resnet import RESNET_DEPTHS, ResNet

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NORM_POSITIONS",
    "RESNET_DEPTHS",
    "BasicBlock",
    "BottleneckBlock",
    "ConvBlock",
    "ConvNet",
    "LinearBlock",
    "NormPosition",
    "OneHot",
    "ResNet",
    "ResidualBlock",
    "ResidualMLPBlock",
    "activation_names",
    "check_dropout",
    "make_activation",
    "one_hot",
    "register_activation",
]
