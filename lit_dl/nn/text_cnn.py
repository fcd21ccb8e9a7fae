"""A convolutional sequence classifier on one-hot or embedded tokens, with masked pooling."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.activations import make_activation
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation
from lit_dl.nn.linear_blocks import check_dropout
from lit_dl.nn.pooling import MaskedPooling, PoolingMode
from lit_dl.nn.token_encoder import TokenEncoder, TokenEncoding

__all__ = ["TextCNN"]


class TextCNN(SelfInitializing):
    """Token ids ``(B, T)`` -> logits: token encoder → Conv1d layers (n-gram detectors, Kim, 2014,
    "Convolutional Neural Networks for Sentence Classification") → masked pooling → MLP head.

    With ``conv_channels=[]`` the encoder feeds the pooling directly (a bag-of-embeddings model that
    ignores order). Padding positions (``ids == padding_idx``) are zeroed after every conv layer and
    left out of the pooling, so the output does not depend on how much padding a batch carries.

    :meth:`init_weights` gives each conv and the head's hidden Linear the init of the activation
    after it and the last Linear Xavier with gain 1; the token table keeps its own init (see
    :class:`~lit_dl.nn.TokenEncoder`).

    Args:
        vocab_size: Number of distinct token ids, padding included.
        num_classes: Number of output logits.
        embed_dim: Width of the token vectors.
        encoding: ``"embedding"`` or ``"one_hot"`` (one-hot followed by a bias-free linear map).
        conv_channels: Output channels of each Conv1d layer; empty for none.
        kernel_size: Odd kernel size of the Conv1d layers ("same" padding).
        pooling: ``"mean"``, ``"max"`` or ``"first"`` token.
        hidden_size: Width of the hidden layer of the head; 0 for a linear head.
        activation: Activation name.
        dropout: Dropout before the head's layers, in ``[0, 1)``.
        padding_idx: Id of the padding token.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 32,
        encoding: TokenEncoding = "embedding",
        conv_channels: Sequence[int] = (64,),
        kernel_size: int = 3,
        pooling: PoolingMode = "max",
        hidden_size: int = 64,
        activation: str = "relu",
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if any(c < 1 for c in conv_channels):
            raise ConfigError(f"conv_channels must all be >= 1, got {list(conv_channels)!r}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ConfigError(f"kernel_size must be an odd integer >= 1, got {kernel_size!r}")
        if hidden_size < 0:
            raise ConfigError(f"hidden_size must be >= 0, got {hidden_size!r}")
        check_dropout(dropout)
        self.tokens = TokenEncoder(vocab_size, embed_dim, encoding, padding_idx)
        convs, width = [], embed_dim
        for c in conv_channels:
            # One activation module per conv: weight init and the monitors see which conv feeds it.
            conv = nn.Conv1d(width, c, kernel_size, padding=kernel_size // 2)
            convs.append(nn.Sequential(conv, make_activation(activation)))
            width = c
        self.convs = nn.ModuleList(convs)
        self.pool = MaskedPooling(pooling)
        head: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
        if hidden_size:
            head += [nn.Linear(width, hidden_size), make_activation(activation)]
            head += [nn.Dropout(dropout)] if dropout > 0 else []
            width = hidden_size
        head.append(nn.Linear(width, num_classes))
        self.head = nn.Sequential(*head)
        self.padding_idx = padding_idx
        self.num_classes = num_classes

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        for i, block in enumerate(self.convs):
            yield from layers_with_activation(block, prefix=f"convs.{i}")  # conv → act
        yield from layers_with_activation(self.head, prefix="head")  # ends in the logits

    def forward(self, ids: Tensor) -> Tensor:
        mask = ids != self.padding_idx  # (B, T)
        x = self.tokens(ids)  # (B, T, embed_dim)
        for conv in self.convs:
            x = conv(x.transpose(1, 2)).transpose(
                1, 2
            )  # conv → act on (B, channels, T); back to (B, T, channels)
            x = x * mask.unsqueeze(-1)
        return self.head(self.pool(x, mask))
