"""Plain ``torch.nn`` building blocks (no Lightning): take them alone into any project."""

from lit_dl.errors import renamed_attributes
from lit_dl.nn.activations import ACTIVATIONS, activation_names, make_activation, register_activation
from lit_dl.nn.attention import MultiHeadSelfAttention
from lit_dl.nn.conv import ConvBlock, ConvNet
from lit_dl.nn.drop_attention import DropAttention
from lit_dl.nn.init import SelfInitializing
from lit_dl.nn.init_marks import initialized_by, mark_initialized
from lit_dl.nn.linear_blocks import NORM_POSITIONS, LinearBlock, NormPosition, ResidualMLPBlock, check_dropout
from lit_dl.nn.mlp import MLP
from lit_dl.nn.onehot import OneHot, one_hot
from lit_dl.nn.pooling import MaskedPooling
from lit_dl.nn.positions import PositionEncoding
from lit_dl.nn.resnet import RESNET_DEPTHS, ResNet
from lit_dl.nn.resnet_blocks import BasicBlock, BottleneckBlock, ResidualBlock
from lit_dl.nn.text_cnn import TextCNN
from lit_dl.nn.token_encoder import TokenEncoder
from lit_dl.nn.transformer import TransformerBlock, TransformerSequenceNet

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "NORM_POSITIONS",
    "RESNET_DEPTHS",
    "BasicBlock",
    "BottleneckBlock",
    "ConvBlock",
    "ConvNet",
    "DropAttention",
    "LinearBlock",
    "MaskedPooling",
    "MultiHeadSelfAttention",
    "NormPosition",
    "OneHot",
    "PositionEncoding",
    "ResNet",
    "ResidualBlock",
    "ResidualMLPBlock",
    "SelfInitializing",
    "TextCNN",
    "TokenEncoder",
    "TransformerBlock",
    "TransformerSequenceNet",
    "activation_names",
    "check_dropout",
    "initialized_by",
    "make_activation",
    "mark_initialized",
    "one_hot",
    "register_activation",
]

# Renamed: the old short names are torch's, which made them ambiguous in any LightningCLI config.
_RENAMED = {"TransformerEncoderLayer": ("TransformerBlock", "torch.nn.TransformerEncoderLayer")}

__getattr__ = renamed_attributes(__name__, _RENAMED)
