"""Token ids to vectors: one-hot followed by a linear map, or its compact equivalent ``nn.Embedding``."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.onehot import one_hot

__all__ = ["TokenEncoder"]

TokenEncoding = Literal["embedding", "one_hot"]


class TokenEncoder(nn.Module):
    """``(B, T)`` integer ids -> ``(B, T, dim)`` vectors.

    ``"one_hot"`` computes ``one_hot(ids) @ W`` with a bias-free ``Linear(vocab_size, dim)``;
    ``"embedding"`` looks up row ``ids`` of a table, which is the same function without building the
    ``(B, T, vocab_size)`` one-hot tensor: with ``table = W.T`` both give the same output. The padding id
    maps to the zero vector in both (its one-hot row is zeroed; the embedding uses ``padding_idx``),
    so padding never receives gradient.

    Args:
        vocab_size: Number of distinct ids, padding included.
        dim: Output width.
        encoding: ``"embedding"`` or ``"one_hot"``.
        padding_idx: Id of the padding token.
    """

    def __init__(
        self, vocab_size: int, dim: int, encoding: TokenEncoding = "embedding", padding_idx: int = 0
    ):
        super().__init__()
        if encoding not in ("embedding", "one_hot"):
            raise ConfigError(f"encoding must be 'embedding' or 'one_hot', got {encoding!r}")
        if vocab_size < 2:
            raise ConfigError(f"vocab_size must be >= 2, got {vocab_size!r}")
        if dim < 1:
            raise ConfigError(f"dim must be >= 1, got {dim!r}")
        if not 0 <= padding_idx < vocab_size:
            raise ConfigError(f"padding_idx must be in [0, {vocab_size}), got {padding_idx!r}")
        self.vocab_size = vocab_size
        self.encoding = encoding
        self.padding_idx = padding_idx
        if encoding == "embedding":
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)
        else:
            self.linear = nn.Linear(vocab_size, dim, bias=False)

    def forward(self, ids: Tensor) -> Tensor:
        if self.encoding == "embedding":
            return self.embedding(ids)
        x = one_hot(ids, self.vocab_size, dtype=self.linear.weight.dtype)  # (B, T, vocab)
        x[..., self.padding_idx] = 0.0
        return self.linear(x)
