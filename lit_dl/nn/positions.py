"""Position encodings added to token vectors: fixed sinusoids or learned vectors."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from lit_dl.errors import ConfigError

__all__ = ["PositionEncoding"]


class PositionEncoding(nn.Module):
    """Add a position vector to every token: ``x[:, t] + p[t]``.

    ``"sinusoidal"``: ``p[t, 2i] = sin(t / 10000^(2i/dim))``, ``p[t, 2i+1] = cos(…)`` (Vaswani et al.,
    2017, Sec. 3.5), a buffer, not trained. ``"learned"``: an ``nn.Embedding(max_length, dim)`` table
    (Devlin et al., 2019, "BERT"); the task base gives embedding tables no weight decay by default.

    Args:
        kind: ``"sinusoidal"`` or ``"learned"``.
        max_length: Longest sequence the encoding covers.
        dim: Model width.
    """

    sinusoids: Tensor  # the buffer of the sinusoidal kind

    def __init__(self, kind: Literal["sinusoidal", "learned"], max_length: int, dim: int) -> None:
        super().__init__()
        if kind not in ("sinusoidal", "learned"):
            raise ConfigError(f"positions must be 'sinusoidal' or 'learned', got {kind!r}")
        if max_length < 1:
            raise ConfigError(f"max_length must be >= 1, got {max_length!r}")
        self.kind = kind
        self.max_length = max_length
        if kind == "learned":
            self.table = nn.Embedding(max_length, dim)
            nn.init.normal_(self.table.weight, std=0.02)
        else:
            pos = torch.arange(max_length, dtype=torch.float32)[:, None]
            freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
            table = torch.zeros(max_length, dim)
            table[:, 0::2] = torch.sin(pos * freq)
            table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
            self.register_buffer("sinusoids", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[1]
        if t > self.max_length:
            raise ValueError(
                f"sequence length {t} exceeds the position encoding's max_length {self.max_length}"
            )
        table = self.table.weight[:t] if self.kind == "learned" else self.sinusoids[:t]
        return x + table
