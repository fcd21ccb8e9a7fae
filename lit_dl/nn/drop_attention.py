"""DropAttention (Zehui Lin et al., 2019, "DropAttention: A Regularization Method for Fully-Connected
Self-Attention Networks", arXiv:1907.11065): dropout applied to attention weights.

Two ways of dropping, each over windows of ``w`` consecutive keys:

- ``"column"`` — DropAttention(c): a dropped key is dropped for every query of that head and sample
  (a whole column of the attention matrix).
- ``"element"`` — DropAttention(e): each query drops its own keys independently (single weights).

Window reading implemented here: the keys ``0 .. T-1`` are cut into consecutive, non-overlapping
blocks ``[0, w), [w, 2w), …`` (the last one may be shorter) and each block is kept or dropped as a
whole with probability ``rate``. The expected share of dropped keys is therefore exactly ``rate`` for
every ``w``. (The other reading, DropBlock-style spans starting at random positions, makes the
dropped share depend on ``w`` and on overlaps; it is not the one implemented.)

Rescaling: ``"renorm"`` is the paper's normalised rescaling: the kept weights of each row are divided
by their sum so that every row again sums to 1. It does **not** preserve the expectation: the
expected renormalised weight differs from the undropped one (a large weight's share shrinks when
small ones are dropped with it, and grows when they are dropped without it), so train-time
attention is not an unbiased estimate of eval-time attention. ``"inverse"`` divides by ``1 - rate``
as ordinary dropout does, which keeps every weight's expectation (rows then sum to 1 only on
average); ``mode="element", window=1, rescale="inverse"`` is plain dropout on attention weights
(as in the original Transformer). A row whose weight is dropped entirely (all its keys with nonzero
weight dropped) cannot be renormalised; such a row keeps its undropped weights, so no NaN can
appear and every row still sums to 1.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from lit_dl.errors import ConfigError

__all__ = ["DropAttention"]

DropMode = Literal["element", "column"]
Rescale = Literal["renorm", "inverse"]


class DropAttention(nn.Module):
    """Drop attention weights ``(batch, heads, queries, keys)`` in training; the identity in eval.

    Args:
        rate: Probability of dropping a window of keys, in ``[0, 1)``; 0 turns the layer off.
        mode: ``"column"`` (DropAttention(c), the default everywhere in lit_dl) or ``"element"``
            (DropAttention(e)).
        window: Number ``w`` of consecutive keys dropped together (see the module docstring).
        rescale: ``"renorm"`` (rows renormalised to sum 1, the paper's choice; biased: it does not
            keep each weight's expectation) or ``"inverse"`` (divide by ``1 - rate``; unbiased).
    """

    def __init__(
        self, rate: float = 0.1, mode: DropMode = "column", window: int = 1, rescale: Rescale = "renorm"
    ) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"attention drop rate must be in [0, 1), got {rate!r}")
        if mode not in ("element", "column"):
            raise ConfigError(f"drop mode must be 'element' or 'column', got {mode!r}")
        if window < 1:
            raise ConfigError(f"window must be >= 1, got {window!r}")
        if rescale not in ("renorm", "inverse"):
            raise ConfigError(f"rescale must be 'renorm' or 'inverse', got {rescale!r}")
        self.rate = float(rate)
        self.mode = mode
        self.window = window
        self.rescale = rescale

    def keep_mask(self, shape: torch.Size, device: torch.device | None = None) -> Tensor:
        """A boolean mask broadcastable to ``shape = (B, H, Tq, Tk)``, True where a weight is kept."""
        b, h, tq, tk = shape
        blocks = -(-tk // self.window)
        rows = 1 if self.mode == "column" else tq
        keep = torch.rand(b, h, rows, blocks, device=device) >= self.rate
        return keep.repeat_interleave(self.window, dim=-1)[..., :tk]

    def forward(self, attn: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return attn
        keep = self.keep_mask(attn.shape, attn.device)
        if self.rescale == "inverse":
            return attn * keep / (1.0 - self.rate)
        kept = attn * keep
        total = kept.sum(dim=-1, keepdim=True)
        safe = torch.where(total > 0, total, torch.ones_like(total))
        return torch.where(total > 0, kept / safe, attn)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, mode={self.mode!r}, window={self.window}, rescale={self.rescale!r}"
