"""The convolutional / bag-of-embeddings sequence recipe."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol, cast

from torch import nn

from lit_dl.models.classification import ClassificationTask
from lit_dl.models.vocabulary_check import check_token_data
from lit_dl.nn import TextCNN

__all__ = ["SequenceClassifier"]


class _SequenceOptions(Protocol):
    """``SequenceClassifier``'s own arguments as ``self.hparams`` holds them (typed reads of them)."""

    vocab_size: int
    embed_dim: int
    encoding: Literal["embedding", "one_hot"]
    conv_channels: Sequence[int]
    kernel_size: int
    pooling: Literal["mean", "max", "first"]
    hidden_size: int
    activation: str
    dropout: float
    padding_idx: int


class SequenceClassifier(ClassificationTask):
    """Classification of token-id sequences ``(B, T)`` with a :class:`~lit_dl.nn.TextCNN`.

    Args:
        vocab_size: Number of distinct token ids, padding included (the data module's ``vocab_size``).
        embed_dim: Width of the token vectors.
        encoding: ``"embedding"`` (``nn.Embedding``) or ``"one_hot"`` (one-hot + bias-free Linear).
        conv_channels: Output channels of each Conv1d layer; ``[]`` for a bag-of-embeddings model.
        kernel_size: Odd kernel size of the Conv1d layers.
        pooling: ``"mean"``, ``"max"`` or ``"first"`` token, over real (non-padding) tokens.
        hidden_size: Hidden width of the head; 0 for a linear head.
        activation: Activation name.
        dropout: Dropout in the head.
        padding_idx: Id of the padding token.
        **kwargs: Arguments of :class:`~lit_dl.models.ClassificationTask`.
    """

    def __init__(
        self,
        vocab_size: int,
        embed_dim: int = 32,
        encoding: Literal["embedding", "one_hot"] = "embedding",
        conv_channels: Sequence[int] = (64,),
        kernel_size: int = 3,
        pooling: Literal["mean", "max", "first"] = "max",
        hidden_size: int = 64,
        activation: str = "relu",
        dropout: float = 0.0,
        padding_idx: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        check_token_data(
            getattr(self.trainer, "datamodule", None), self._options.vocab_size, self._options.padding_idx
        )

    @property
    def _options(self) -> _SequenceOptions:
        """This recipe's own arguments (typed): what :meth:`build_backbone` builds from."""
        return cast(_SequenceOptions, self.hparams)

    def build_backbone(self) -> nn.Module:
        hp = self._options
        return TextCNN(
            vocab_size=hp.vocab_size,
            num_classes=self.num_classes,
            embed_dim=hp.embed_dim,
            encoding=hp.encoding,
            conv_channels=list(hp.conv_channels),
            kernel_size=hp.kernel_size,
            pooling=hp.pooling,
            hidden_size=hp.hidden_size,
            activation=hp.activation,
            dropout=hp.dropout,
            padding_idx=hp.padding_idx,
        )
