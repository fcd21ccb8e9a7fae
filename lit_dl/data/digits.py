"""The 8×8 handwritten digits that scikit-learn ships: the offline default data of lit_dl."""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lit_dl.data.device_batches import DeviceResident
from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.errors import ConfigError

__all__ = ["DigitsDataModule", "check_split_fractions"]


def check_split_fractions(n: int, val_fraction: float, test_fraction: float, num_classes: int) -> None:
    """Check that the split fractions leave every split at least one sample per class.

    Raises:
        ConfigError: a fraction is outside ``(0, 1)`` or the training split would be too small.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < value < 1.0:
            raise ConfigError(f"{name} must be in (0, 1), got {value!r}")
    # the sizes scikit-learn's train_test_split gives (test: ceil), first test off all, then val off the rest
    n_test = math.ceil(n * test_fraction)
    n_val = math.ceil((n - n_test) * val_fraction / (1.0 - test_fraction)) if test_fraction < 1 else 0
    n_train = n - n_test - n_val
    for name, value, size, split in (
        ("test_fraction", test_fraction, n_test, "test"),
        ("val_fraction", val_fraction, n_val, "validation"),
    ):
        if n_train >= num_classes and size < num_classes:  # a stratified split: one sample per class
            raise ConfigError(
                f"{name}={value!r} puts {size} of {n} samples in the {split} split; a stratified split "
                f"needs at least one per class ({num_classes}): give {name} >= {num_classes / n:.3g}"
            )
    if n_train < num_classes:
        raise ConfigError(
            f"val_fraction={val_fraction!r} + test_fraction={test_fraction!r} leave {max(n_train, 0)} of {n} "
            f"samples for training; the fractions must sum to less than 1 and leave at least "
            f"{num_classes} training samples"
        )


class DigitsDataModule(InMemoryDataModule):
    """scikit-learn's 1,797 handwritten digits (8×8, 10 classes), split and standardised.

    The split is stratified and fixed by ``seed``; each pixel is standardised with the mean and
    standard deviation of the training split only (pixels constant in training keep scale 1).

    Args:
        batch_size: Samples per training batch (per device under DDP).
        eval_batch_size: Samples per evaluation batch; defaults to ``batch_size``.
        val_fraction: Share of the data in the validation split, in (0, 1).
        test_fraction: Share of the data in the test split, in (0, 1).
        seed: Seed of the split (independent of the training seed).
        as_images: Return ``(1, 8, 8)`` images instead of 64-feature vectors.
        drop_last: Drop the last incomplete training batch.
        device_resident: ``auto``, ``true`` or ``false``: keep the splits on the accelerator and
            gather each batch there (see :class:`~lit_dl.data.InMemoryDataModule`).
    """

    num_features = 64
    image_shape = (1, 8, 8)

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        as_images: bool = False,
        drop_last: bool = True,
        device_resident: DeviceResident = "auto",
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last, device_resident=device_resident)
        check_split_fractions(1797, val_fraction, test_fraction, num_classes=10)
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.as_images = as_images
        self.num_classes = 10

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        x, y = load_digits(return_X_y=True)
        x = x.astype(np.float32)
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=self.test_fraction, stratify=y, random_state=self.seed
        )
        val_share = self.val_fraction / (1.0 - self.test_fraction)
        x_train, x_val, y_train, y_val = train_test_split(
            x_rest, y_rest, test_size=val_share, stratify=y_rest, random_state=self.seed
        )
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std[std < 1e-6] = 1.0
        shape = (-1, *self.image_shape) if self.as_images else (-1, self.num_features)

        def make(features: np.ndarray, labels: np.ndarray) -> TensorBatchDataset:
            xs = torch.from_numpy((features - mean) / std).reshape(shape).contiguous()
            return TensorBatchDataset(xs, torch.from_numpy(labels).long())

        self._normalization = (
            torch.from_numpy(mean).reshape(shape[1:]),
            torch.from_numpy(std).reshape(shape[1:]),
        )
        self.train_set = make(x_train, y_train)
        self.val_set = make(x_val, y_val)
        self.test_set = make(x_test, y_test)
        self.num_classes = int(y.max()) + 1

    def input_normalization(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` of the training pixels, shaped like one sample: a raw sample ``x`` (pixel
        values 0..16 as scikit-learn ships them) becomes the model's input ``(x - mean) / std``."""
        self.setup()
        return self._normalization
