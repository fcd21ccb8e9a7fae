"""Tokenizers and a vocabulary built from training text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Literal

from lit_dl.errors import ConfigError

__all__ = ["TOKENIZERS", "Vocabulary", "tokenize"]

Tokenizer = Literal["whitespace", "character"]
TOKENIZERS: tuple[str, ...] = ("whitespace", "character")


def tokenize(text: str, tokenizer: Tokenizer = "whitespace", lowercase: bool = False) -> list[str]:
    """Split ``text`` into whitespace-separated words or into characters (whitespace included)."""
    if tokenizer not in TOKENIZERS:
        raise ConfigError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {tokenizer!r}")
    if lowercase:
        text = text.lower()
    return text.split() if tokenizer == "whitespace" else list(text)


class Vocabulary:
    """Token ↔ id map: id 0 is the padding token, id 1 the unknown token, then the tokens seen at least
    ``min_freq`` times, most frequent first (ties in alphabetical order), at most ``max_size`` ids.

    Args:
        token_lists: Tokenized training texts.
        min_freq: Fewest occurrences for a token to get its own id.
        max_size: Most ids in total, padding and unknown included; ``None`` for no limit.
    """

    PAD = "<pad>"
    UNK = "<unk>"
    pad_id = 0
    unk_id = 1

    def __init__(
        self, token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int | None = None
    ) -> None:
        if min_freq < 1:
            raise ConfigError(f"min_freq must be >= 1, got {min_freq!r}")
        if max_size is not None and max_size < 3:
            raise ConfigError(f"max_vocab_size must be >= 3 (padding, unknown, one token), got {max_size!r}")
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - 2]
        self.tokens: list[str] = [self.PAD, self.UNK, *kept]
        self._ids = {tok: i for i, tok in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str], max_length: int) -> list[int]:
        """Ids of ``tokens`` (unknown ones -> ``unk_id``), truncated and right-padded to ``max_length``."""
        ids = [self._ids.get(tok, self.unk_id) for tok in tokens[:max_length]]
        return ids + [self.pad_id] * (max_length - len(ids))
