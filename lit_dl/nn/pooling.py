"""Pooling a padded sequence ``(B, T, D)`` into one vector per sequence, padding left out."""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from lit_dl.errors import ConfigError

__all__ = ["MaskedPooling"]

PoolingMode = Literal["mean", "max", "first"]


class MaskedPooling(nn.Module):
    """Mean or max over the real tokens of each sequence, or its first token.

    A sequence without any real token pools to the zero vector.

    Args:
        mode: ``"mean"``, ``"max"`` or ``"first"``.
    """

    def __init__(self, mode: PoolingMode = "mean") -> None:
        super().__init__()
        if mode not in ("mean", "max", "first"):
            raise ConfigError(f"pooling must be one of mean, max, first, got {mode!r}")
        self.mode = mode

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` ``(B, T, D)`` and ``mask`` ``(B, T)`` (True for real tokens) -> ``(B, D)``."""
        if self.mode == "first":
            return x[:, 0]
        m = mask.unsqueeze(-1)  # (B, T, 1)
        if self.mode == "mean":
            return (x * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)
        pooled = x.masked_fill(~m, float("-inf")).amax(dim=1)
        return pooled.masked_fill(~m.any(dim=1), 0.0)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
