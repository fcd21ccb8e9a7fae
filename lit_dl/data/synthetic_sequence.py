"""An offline synthetic sequence task: which of a few short token patterns occurs in a sequence."""

from __future__ import annotations

import torch
from torch import Tensor

from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.errors import ConfigError

__all__ = ["SyntheticSequenceDataModule"]


def _occurs(seq: list[int], pattern: tuple[int, ...]) -> bool:
    k = len(pattern)
    return any(tuple(seq[i : i + k]) == pattern for i in range(len(seq) - k + 1))


class SyntheticSequenceDataModule(InMemoryDataModule):
    """Random token sequences labelled by the pattern they contain.

    ``num_patterns`` distinct patterns of ``pattern_length`` consecutive tokens are drawn from the seed.
    Label 0: the sequence contains none of them; label ``c >= 1``: it contains pattern ``c - 1`` (at a
    random position) and no other. Labels are balanced. The pattern's tokens also occur scattered in
    every sequence, so a model must see their order, not only their counts.

    Batches are ``(ids, label)`` with ``ids`` of shape ``(B, max_length)``, right-padded with id 0;
    real tokens are ``1 .. vocab_size - 1``.

    Args:
        vocab_size: Number of ids including padding (0).
        min_length: Shortest sequence (before padding).
        max_length: Longest sequence; every batch is padded to it.
        pattern_length: Tokens per pattern.
        num_patterns: Number of patterns; there are ``num_patterns + 1`` classes.
        num_train: Training samples.
        num_val: Validation samples.
        num_test: Test samples.
        seed: Seed of the generator (same seed, same data).
        batch_size: Samples per training batch.
        eval_batch_size: Samples per evaluation batch; defaults to ``batch_size``.
        drop_last: Drop the last incomplete training batch.
    """

    padding_idx = 0
    num_classes: int  # known from the start, not only after setup()

    def __init__(
        self,
        vocab_size: int = 16,
        min_length: int = 8,
        max_length: int = 32,
        pattern_length: int = 3,
        num_patterns: int = 1,
        num_train: int = 2000,
        num_val: int = 500,
        num_test: int = 500,
        seed: int = 0,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        drop_last: bool = True,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last)
        if vocab_size < 3:
            raise ConfigError(f"vocab_size must be >= 3 (padding and two tokens), got {vocab_size!r}")
        if pattern_length < 1:
            raise ConfigError(f"pattern_length must be >= 1, got {pattern_length!r}")
        if not pattern_length <= min_length <= max_length:
            raise ConfigError(
                f"need pattern_length <= min_length <= max_length, got {pattern_length!r}, "
                f"{min_length!r}, {max_length!r}"
            )
        if num_patterns < 1 or num_patterns > (vocab_size - 1) ** pattern_length // 2:
            raise ConfigError(
                f"num_patterns must be in [1, {(vocab_size - 1) ** pattern_length // 2}] for "
                f"vocab_size={vocab_size} and pattern_length={pattern_length}, got {num_patterns!r}"
            )
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value!r}")
        self.vocab_size = vocab_size
        self.min_length = min_length
        self.max_length = max_length
        self.pattern_length = pattern_length
        self.num_patterns = num_patterns
        self.sizes = (num_train, num_val, num_test)
        self.seed = seed
        self.num_classes = num_patterns + 1
        self.patterns: list[tuple[int, ...]] = []

    def _draw(self, gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        def randint(lo: int, hi: int) -> int:  # uniform in [lo, hi]
            return int(torch.randint(lo, hi + 1, (1,), generator=gen))

        ids = torch.zeros(n, self.max_length, dtype=torch.long)
        labels = torch.randint(0, self.num_classes, (n,), generator=gen)
        for i in range(n):
            length = randint(self.min_length, self.max_length)
            while True:
                seq = torch.randint(1, self.vocab_size, (length,), generator=gen).tolist()
                label = int(labels[i])
                if label:
                    pos = randint(0, length - self.pattern_length)
                    seq[pos : pos + self.pattern_length] = self.patterns[label - 1]
                present = [c + 1 for c, p in enumerate(self.patterns) if _occurs(seq, p)]
                if present == ([label] if label else []):
                    break
            ids[i, :length] = torch.tensor(seq)
        return ids, labels

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        gen = torch.Generator().manual_seed(self.seed)
        patterns: list[tuple[int, ...]] = []
        while len(patterns) < self.num_patterns:
            p = tuple(torch.randint(1, self.vocab_size, (self.pattern_length,), generator=gen).tolist())
            if p not in patterns:
                patterns.append(p)
        self.patterns = patterns
        self.train_set, self.val_set, self.test_set = (
            TensorBatchDataset(*self._draw(gen, n)) for n in self.sizes
        )
