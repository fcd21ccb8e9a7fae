"""Plays a downstream project's data: plain ``LightningDataModule``s that know nothing of lit_dl (plain
``TensorDataset``s and ``DataLoader``s), selected from YAML by class_path."""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset


def gaussian_blobs(n: int, num_features: int, num_classes: int, generator: torch.Generator) -> TensorDataset:
    """``n`` samples of ``num_classes`` Gaussian blobs (one mean per class) in ``num_features`` dimensions."""
    centers = torch.randn(num_classes, num_features, generator=torch.Generator().manual_seed(1234)) * 2
    y = torch.randint(0, num_classes, (n,), generator=generator)
    x = centers[y] + torch.randn(n, num_features, generator=generator)
    return TensorDataset(x, y)


class PlainDataModule(L.LightningDataModule):
    """Train, validation and test splits of Gaussian blobs in plain ``DataLoader``s. The inputs are
    standardised with the training split's mean and std, computed in ``setup`` (so
    :meth:`input_normalization` works only after ``setup``, as in many projects).

    Args:
        num_train: Training samples.
        num_val: Validation samples.
        num_test: Test samples.
        num_features: Input width.
        num_classes: Number of classes.
        batch_size: Samples per batch, every split.
    """

    def __init__(
        self,
        num_train: int = 64,
        num_val: int = 33,
        num_test: int = 225,
        num_features: int = 16,
        num_classes: int = 3,
        batch_size: int = 16,
    ) -> None:
        super().__init__()
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.num_features = num_features
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        generator = torch.Generator().manual_seed(0)
        raw = {
            name: gaussian_blobs(n, self.num_features, self.num_classes, generator)
            for name, n in self.sizes.items()
        }
        x_train = raw["train"].tensors[0]
        self.mean, self.std = x_train.mean(0), x_train.std(0)
        self.splits = {
            name: TensorDataset((data.tensors[0] - self.mean) / self.std, data.tensors[1])
            for name, data in raw.items()
        }

    def input_normalization(self) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` of the raw training inputs; set by ``setup``."""
        return self.mean, self.std

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["train"], batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.batch_size)


class NoTestSplitDataModule(L.LightningDataModule):
    """Train and validation splits only: no ``test_dataloader``.

    Args:
        batch_size: Samples per batch.
    """

    def __init__(self, batch_size: int = 16) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.num_classes = 3

    def setup(self, stage: str | None = None) -> None:
        generator = torch.Generator().manual_seed(0)
        self.train = gaussian_blobs(64, 16, 3, generator)
        self.val = gaussian_blobs(32, 16, 3, generator)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val, batch_size=self.batch_size)
