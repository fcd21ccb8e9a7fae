"""Setup-time check shared by the token-sequence recipes: the data must fit the model's vocabulary."""

from __future__ import annotations

from typing import Any

from lit_dl.errors import ConfigError

__all__ = ["check_token_data"]


def check_token_data(datamodule: Any, vocab_size: int, padding_idx: int) -> None:
    """Raise ``ConfigError`` if ``datamodule`` (after its ``setup``) has more token ids than
    ``vocab_size`` or pads with another id than ``padding_idx``; data modules without a ``vocab_size``
    or ``padding_idx`` attribute are not checked."""
    data_vocab = getattr(datamodule, "vocab_size", None)
    name = type(datamodule).__name__
    if data_vocab is not None and data_vocab > vocab_size:
        raise ConfigError(
            f"model vocab_size={vocab_size} is smaller than the {data_vocab} token ids of the data ({name}); "
            f"set model.init_args.vocab_size to at least {data_vocab}"
        )
    data_pad = getattr(datamodule, "padding_idx", None)
    if data_pad is not None and data_pad != padding_idx:
        raise ConfigError(
            f"model padding_idx={padding_idx} differs from the data's padding id {data_pad} ({name}); "
            f"set model.init_args.padding_idx to {data_pad}"
        )
