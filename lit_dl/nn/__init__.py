"""Plain ``torch.nn`` building blocks (no Lightning): take them alone into any project."""

from lit_dl.nn.activations import ACTIVATIONS, activation_names, make_activation, register_activation
from lit_dl.nn.blocks import NORM_POSITIONS, LinearBlock, NormPosition, ResidualMLPBlock, check_dropout
from lit_dl.nn.mlp import MLP
from lit_dl.nn.onehot import OneHot, one_hot

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NORM_POSITIONS",
    "LinearBlock",
    "NormPosition",
    "OneHot",
    "ResidualMLPBlock",
    "activation_names",
    "check_dropout",
    "make_activation",
    "one_hot",
    "register_activation",
]
