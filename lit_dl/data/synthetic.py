"""A synthetic classification task generated from a seed, for tests and quick experiments."""

from __future__ import annotations

import torch

from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.errors import ConfigError

__all__ = ["SyntheticClassificationDataModule"]


class SyntheticClassificationDataModule(InMemoryDataModule):
    """Gaussian clusters: each class a random centre in ``num_features`` dimensions, unit-variance noise.

    With ``class_sep`` around 3 a linear model separates the classes almost perfectly; smaller values
    make the task harder.

    Args:
        num_classes: Number of classes (labels ``0 .. num_classes - 1``).
        num_features: Dimension of each sample.
        num_train: Training samples.
        num_val: Validation samples.
        num_test: Test samples.
        class_sep: Scale of the class centres relative to the noise.
        seed: Seed of the generator (the data are the same for the same seed).
        batch_size: Samples per training batch.
        eval_batch_size: Samples per evaluation batch; defaults to ``batch_size``.
        drop_last: Drop the last incomplete training batch.
    """

    num_classes: int  # known from the start, not only after setup()

    def __init__(
        self,
        num_classes: int = 3,
        num_features: int = 16,
        num_train: int = 256,
        num_val: int = 64,
        num_test: int = 64,
        class_sep: float = 3.0,
        seed: int = 0,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        drop_last: bool = True,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last)
        if num_classes < 2:
            raise ConfigError(f"num_classes must be >= 2, got {num_classes!r}")
        if num_features < 1:
            raise ConfigError(f"num_features must be >= 1, got {num_features!r}")
        if num_train < num_classes:
            raise ConfigError(f"num_train must be >= num_classes ({num_classes}), got {num_train!r}")
        for name, value in (("num_val", num_val), ("num_test", num_test)):
            if value < 1:
                raise ConfigError(f"{name} must be >= 1, got {value!r}")
        self.num_classes = num_classes
        self.num_features = num_features
        self.sizes = (num_train, num_val, num_test)
        self.class_sep = class_sep
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        gen = torch.Generator().manual_seed(self.seed)
        centres = torch.randn(self.num_classes, self.num_features, generator=gen) * self.class_sep
        splits = []
        for n in self.sizes:
            y = torch.randint(0, self.num_classes, (n,), generator=gen)
            x = centres[y] + torch.randn(n, self.num_features, generator=gen)
            splits.append(TensorBatchDataset(x, y))
        self.train_set, self.val_set, self.test_set = splits
