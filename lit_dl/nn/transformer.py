"""Transformer encoder for sequence classification (Vaswani et al., 2017), with DropAttention."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, cast

from torch import Tensor, nn

from lit_dl.errors import ConfigError
from lit_dl.nn.activations import make_activation
from lit_dl.nn.attention import MultiHeadSelfAttention
from lit_dl.nn.drop_attention import DropMode, Rescale
from lit_dl.nn.init import Feeds, SelfInitializing, layers_with_activation
from lit_dl.nn.linear_blocks import check_dropout
from lit_dl.nn.pooling import MaskedPooling, PoolingMode
from lit_dl.nn.positions import PositionEncoding
from lit_dl.nn.token_encoder import TokenEncoder, TokenEncoding

__all__ = ["TransformerBlock", "TransformerSequenceNet"]


class TransformerBlock(SelfInitializing):
    """Self-attention and MLP sublayers, each with a residual connection and LayerNorm.

    Post-norm (Vaswani et al., 2017): ``x = LN(x + Drop(Attn(x)))``, ``x = LN(x + Drop(MLP(x)))``.
    Pre-norm (Xiong et al., 2020, "On Layer Normalization in the Transformer Architecture"):
    ``x = x + Drop(Attn(LN(x)))``, ``x = x + Drop(MLP(LN(x)))``; trains without LR warmup.

    :meth:`init_weights` gives the MLP's first Linear the init of its activation and every other
    Linear (attention projections, the MLP's output) Xavier with gain 1; with ``zero_init_residual``
    each sublayer's output projection (``attn.out_proj``, the MLP's last Linear) starts at zero, so
    each residual branch starts at zero (Goyal et al., 2017, Sec. 5.1, applied to both sublayers).

    Args:
        dim: Model width.
        num_heads: Attention heads.
        mlp_ratio: Hidden width of the MLP as a multiple of ``dim``.
        dropout: Dropout on each sublayer's output and inside the MLP, in ``[0, 1)``.
        attn_drop: Drop rate of the attention weights (see :class:`~lit_dl.nn.DropAttention`).
        drop_mode: ``"column"`` (DropAttention(c)) or ``"element"`` (DropAttention(e)).
        drop_window: Consecutive keys dropped together.
        drop_rescale: ``"renorm"`` or ``"inverse"``.
        norm_first: Pre-norm instead of post-norm.
        activation: Activation of the MLP.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        attn_drop: float = 0.0,
        drop_mode: DropMode = "column",
        drop_window: int = 1,
        drop_rescale: Rescale = "renorm",
        norm_first: bool = True,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        check_dropout(dropout)
        if mlp_ratio <= 0:
            raise ConfigError(f"mlp_ratio must be > 0, got {mlp_ratio!r}")
        hidden = max(1, round(dim * mlp_ratio))
        self.attn = MultiHeadSelfAttention(dim, num_heads, attn_drop, drop_mode, drop_window, drop_rescale)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), make_activation(activation), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)
        self.norm_first = norm_first

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        yield from layers_with_activation(self.attn, prefix="attn")
        yield from layers_with_activation(self.mlp, prefix="mlp")  # its output feeds the sum: linear

    def residual_zero_weights(self) -> Iterator[Tensor]:
        yield self.attn.out_proj.weight
        yield cast(nn.Linear, self.mlp[-1]).weight

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.norm_first:
            x = x + self.drop(self.attn(self.norm1(x), mask))
            return x + self.drop(self.mlp(self.norm2(x)))
        x = self.norm1(x + self.drop(self.attn(x, mask)))
        return self.norm2(x + self.drop(self.mlp(x)))


class TransformerSequenceNet(SelfInitializing):
    """Token ids ``(B, T)`` -> logits: token encoder + positions → encoder layers → [LN] → masked
    pooling → Linear head. Ids equal to ``padding_idx`` are masked out of attention and pooling.

    :meth:`init_weights` initialises each encoder layer (see :class:`TransformerBlock`) and
    the head (Xavier, gain 1); the token and learned position tables keep their own init.

    Args:
        vocab_size: Number of distinct token ids, padding included.
        num_classes: Number of output logits.
        max_length: Longest input sequence (size of the position table).
        dim: Model width.
        depth: Number of encoder layers.
        num_heads: Attention heads per layer.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        dropout: Dropout after the embedding and in every sublayer.
        attn_drop: Drop rate of the attention weights.
        drop_mode: ``"column"`` (DropAttention(c)) or ``"element"`` (DropAttention(e)).
        drop_window: Consecutive keys dropped together.
        drop_rescale: ``"renorm"`` (paper) or ``"inverse"``.
        norm_first: Pre-norm layers (with a final LayerNorm) instead of post-norm.
        positions: ``"sinusoidal"`` or ``"learned"``.
        pooling: ``"mean"``, ``"max"`` or ``"first"`` token.
        encoding: Token input as ``"embedding"`` or ``"one_hot"`` + linear.
        padding_idx: Id of the padding token.
        activation: Activation of the MLPs.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        max_length: int = 128,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        attn_drop: float = 0.1,
        drop_mode: DropMode = "column",
        drop_window: int = 1,
        drop_rescale: Rescale = "renorm",
        norm_first: bool = True,
        positions: Literal["sinusoidal", "learned"] = "sinusoidal",
        pooling: PoolingMode = "mean",
        encoding: TokenEncoding = "embedding",
        padding_idx: int = 0,
        activation: str = "gelu",
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if depth < 1:
            raise ConfigError(f"depth must be >= 1, got {depth!r}")
        check_dropout(dropout)
        self.tokens = TokenEncoder(vocab_size, dim, encoding, padding_idx)
        self.positions = PositionEncoding(positions, max_length, dim)
        self.drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            TransformerBlock(
                dim,
                num_heads,
                mlp_ratio,
                dropout,
                attn_drop,
                drop_mode,
                drop_window,
                drop_rescale,
                norm_first,
                activation,
            )
            for _ in range(depth)
        )
        self.final_norm: nn.Module = nn.LayerNorm(dim) if norm_first else nn.Identity()
        self.pool = MaskedPooling(pooling)
        self.head = nn.Linear(dim, num_classes)
        self.padding_idx = padding_idx
        self.num_classes = num_classes

    def layer_activations(self) -> Iterator[tuple[str, nn.Module, Feeds]]:
        for i, layer in enumerate(self.layers):
            yield from layers_with_activation(layer, prefix=f"layers.{i}")
        yield "head", self.head, None  # logits

    def forward(self, ids: Tensor) -> Tensor:
        mask = ids != self.padding_idx  # (B, T)
        x = self.drop(self.positions(self.tokens(ids)))  # (B, T, dim)
        for layer in self.layers:
            x = layer(x, mask)
        return self.head(self.pool(self.final_norm(x), mask))
