"""Multi-head self-attention written out (no fused kernel), so its weights can be regularised."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.drop_attention import DropAttention, DropMode, Rescale
from lit_dl.nn.init import Feeds, SelfInitializing

__all__ = ["MultiHeadSelfAttention"]


class MultiHeadSelfAttention(SelfInitializing):
    """Scaled dot-product self-attention with ``num_heads`` heads (Vaswani et al., 2017, Sec. 3.2) and
    :class:`~lit_dl.nn.DropAttention` on the attention weights.

    Parameters are laid out like ``torch.nn.MultiheadAttention``'s (``in_proj`` holds the query, key and
    value projections stacked in that order; ``out_proj``), so weights copy over one to one.
    :meth:`init_weights` gives both projections the init of a layer that feeds nothing nonlinear
    (Xavier, gain 1): queries and keys meet in the softmax, values and the output are linear.

    Args:
        dim: Model width; must be divisible by ``num_heads``.
        num_heads: Number of attention heads.
        attn_drop: Drop rate of the attention weights, in ``[0, 1)``.
        drop_mode: ``"column"`` (DropAttention(c)) or ``"element"`` (DropAttention(e)).
        drop_window: Consecutive keys dropped together.
        drop_rescale: ``"renorm"`` (rows renormalised to 1) or ``"inverse"`` (divide by ``1 - rate``).
        bias: Biases in the projections.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        attn_drop: float = 0.0,
        drop_mode: DropMode = "column",
        drop_window: int = 1,
        drop_rescale: Rescale = "renorm",
        bias: bool = True,
    ) -> None:
        super().__init__()
        if num_heads < 1 or dim % num_heads != 0:
            raise ConfigError(f"dim ({dim!r}) must be a positive multiple of num_heads ({num_heads!r})")
        self.dim = dim
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.in_proj = nn.Linear(dim, 3 * dim, bias=bias)
        self.out_proj = nn.Linear(dim, dim, bias=bias)
        self.drop_attention = DropAttention(attn_drop, drop_mode, drop_window, drop_rescale)

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        yield "in_proj", self.in_proj, None
        yield "out_proj", self.out_proj, None

    def attention_weights(self, q: Tensor, k: Tensor, mask: Tensor | None) -> Tensor:
        """Softmax attention ``(B, H, T, T)`` before dropping; masked keys get weight 0."""
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (B, H, T, T)
        if mask is not None:
            # The dtype's lowest value rather than -inf: a row with every key masked stays finite.
            scores = scores.masked_fill(~mask[:, None, None, :], torch.finfo(scores.dtype).min)
        return scores.softmax(dim=-1)

    def forward(self, x: Tensor, mask: Tensor | None = None, return_weights: bool = False) -> Tensor | tuple:
        """Attend over ``x`` ``(B, T, dim)``.

        Args:
            x: Input sequence.
            mask: ``(B, T)`` boolean, True for real tokens, False for padding (keys never attended).
            return_weights: Also return the attention weights after dropping, ``(B, H, T, T)``.
        """
        b, t, d = x.shape
        qkv = self.in_proj(x).view(b, t, 3, self.num_heads, self.head_dim)  # (B, T, 3, H, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, hd)
        weights = self.drop_attention(self.attention_weights(q, k, mask))  # (B, H, T, T)
        out = (weights @ v).transpose(1, 2).reshape(b, t, d)  # (B, T, dim)
        out = self.out_proj(out)
        return (out, weights) if return_weights else out
