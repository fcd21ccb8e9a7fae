"""The Transformer-encoder sequence recipe with DropAttention."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.vocabulary_check import check_token_data
from lit_dl.nn import TransformerSequenceNet

__all__ = ["TransformerClassifier"]


class TransformerClassifier(ClassificationTask):
    """Classification of token-id sequences ``(B, T)`` with a :class:`~lit_dl.nn.TransformerSequenceNet`.

    Args:
        vocab_size: Number of distinct token ids, padding included.
        max_length: Longest input sequence.
        dim: Model width.
        depth: Number of encoder layers.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        dropout: Dropout after the embedding and in every sublayer.
        attn_drop: DropAttention rate on the attention weights, in ``[0, 1)``.
        drop_mode: ``"column"`` (DropAttention(c): whole keys) or ``"element"`` (DropAttention(e)).
        drop_window: Consecutive keys dropped together (aligned windows of this size).
        drop_rescale: ``"renorm"`` (rows renormalised to sum 1, the paper's) or ``"inverse"`` (1/(1-p)).
        norm_first: Pre-norm instead of post-norm layers.
        positions: ``"sinusoidal"`` or ``"learned"``.
        pooling: ``"mean"``, ``"max"`` or ``"first"`` token.
        encoding: ``"embedding"`` or ``"one_hot"``.
        padding_idx: Id of the padding token.
        activation: Activation of the MLPs.
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask`.
    """

    def __init__(
        self,
        vocab_size: int,
        max_length: int = 128,
        dim: int = 64,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.1,
        attn_drop: float = 0.1,
        drop_mode: Literal["element", "column"] = "column",
        drop_window: int = 1,
        drop_rescale: Literal["renorm", "inverse"] = "renorm",
        norm_first: bool = True,
        positions: Literal["sinusoidal", "learned"] = "sinusoidal",
        pooling: Literal["mean", "max", "first"] = "mean",
        encoding: Literal["embedding", "one_hot"] = "embedding",
        padding_idx: int = 0,
        activation: str = "gelu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        check_token_data(
            getattr(self.trainer, "datamodule", None), self.hparams["vocab_size"], self.hparams["padding_idx"]
        )

    def build_backbone(self) -> nn.Module:
        hp = self.hparams
        names: tuple[str, ...] = ("vocab_size", "max_length", "dim", "depth", "num_heads", "mlp_ratio")
        names += ("dropout", "attn_drop", "drop_mode", "drop_window", "drop_rescale", "norm_first")
        names += ("positions", "pooling", "encoding", "padding_idx", "activation")
        return TransformerSequenceNet(num_classes=self.num_classes, **{n: hp[n] for n in names})
