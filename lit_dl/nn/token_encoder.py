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

    Both encodings hold the same parameter, an ``nn.Embedding(vocab_size, dim)`` table ``E``:
    ``"embedding"`` looks up row ``ids`` of ``E``; ``"one_hot"`` computes ``one_hot(ids) @ E``, the
    same function written as a bias-free linear map of the one-hot vectors (and a ``(B, T,
    vocab_size)`` intermediate tensor). Because the one-hot projection *is* the embedding table, it
    is trained as one: no weight decay or L1 unless the task's ``decay_embeddings``, the same
    ``N(0, 1)`` init, left alone by :class:`~lit_dl.callbacks.WeightInit`; the two encodings give the
    same outputs and gradients from the same seed. The padding id maps to the zero vector in both
    (its one-hot entry is zeroed; the table's padding row is zero, ``padding_idx``), so padding never
    receives gradient.

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
        self.embedding = nn.Embedding(vocab_size, dim, padding_idx=padding_idx)

    def forward(self, ids: Tensor) -> Tensor:
        if self.encoding == "embedding":
            return self.embedding(ids)
        x = one_hot(ids, self.vocab_size, dtype=self.embedding.weight.dtype)  # (B, T, vocab)
        x[..., self.padding_idx] = 0.0
        return x @ self.embedding.weight  # (B, T, vocab) @ (vocab, dim) -> (B, T, dim)
