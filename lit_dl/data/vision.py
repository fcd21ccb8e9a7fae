"""MNIST, Fashion-MNIST and CIFAR-10 from files on disk, with torchvision for download and augmentation."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lit_dl.data.image_files import IMAGE_DATASETS, missing_files, read_split
from lit_dl.data.in_memory import InMemoryDataModule
from lit_dl.errors import ConfigError

__all__ = ["VisionDataModule", "import_torchvision"]

INSTALL_HINT = "pip install lit-dl[vision]"


def import_torchvision(purpose: str) -> Any:
    """Import torchvision, or raise ``ConfigError`` saying what to install and why it is needed."""
    try:
        return importlib.import_module("torchvision")
    except (ImportError, RuntimeError) as err:  # a torchvision built for another torch raises RuntimeError
        raise ConfigError(
            f"{purpose} needs torchvision, which cannot be imported ({type(err).__name__}: {err}); "
            f"install it with: {INSTALL_HINT} (a torchvision release matching your torch version)"
        ) from None


class ImageTensorDataset(Dataset):
    """``uint8`` images ``(N, C, H, W)`` and labels; each sample is scaled to [0, 1], optionally
    augmented, and normalised per channel."""

    def __init__(self, images: Tensor, labels: Tensor, mean: Tensor, std: Tensor, augment: Any = None):
        self.images, self.labels = images, labels
        self.mean, self.std = mean.view(-1, 1, 1), std.view(-1, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = self.images[index].float().div_(255.0)
        if self.augment is not None:
            image = self.augment(image)
        return (image - self.mean) / self.std, self.labels[index]


class VisionDataModule(InMemoryDataModule):
    """MNIST, Fashion-MNIST or CIFAR-10 as ``(C, H, W)`` float images normalised per channel.

    The files are read from ``root`` in the layout torchvision downloads into (see
    :mod:`lit_dl.data.image_files`); MNIST files may be gzipped. ``download: true`` fetches them
    with torchvision first. The last ``val_size`` images of a seeded permutation of the training
    files form the validation split; the test files are the test split.

    Augmentation of the training split (``augment``, default on for CIFAR-10 only) is the standard
    CIFAR recipe of He et al. (2016, Sec. 4.2): pad 4 pixels, random 32x32 crop, random horizontal
    flip; it uses ``torchvision.transforms.v2``. Horizontal flips are wrong for digits, so MNIST
    augmentation is the padded random crop alone. Without download and augmentation, torchvision is
    not needed.

    Args:
        dataset: ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.
        root: Folder holding the dataset's folder (``MNIST/raw``, ``FashionMNIST/raw``,
            ``cifar-10-batches-py``).
        download: Download missing files with torchvision (needs internet).
        augment: Augment the training split; ``None`` means on for CIFAR-10, off otherwise.
        val_size: Training images held out for validation.
        seed: Seed of the train/val split.
        batch_size: Samples per training batch.
        eval_batch_size: Samples per evaluation batch; defaults to ``batch_size``.
        num_workers: DataLoader worker processes.
        drop_last: Drop the last incomplete training batch.
    """

    def __init__(
        self,
        dataset: Literal["mnist", "fashion_mnist", "cifar10"] = "cifar10",
        root: str = "data",
        download: bool = False,
        augment: bool | None = None,
        val_size: int = 5000,
        seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        drop_last: bool = True,
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last, num_workers)
        if dataset not in IMAGE_DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(IMAGE_DATASETS)}, got {dataset!r}")
        if val_size < 1:
            raise ConfigError(f"val_size must be >= 1, got {val_size!r}")
        self.dataset = dataset
        self.spec = IMAGE_DATASETS[dataset]
        self.root = Path(root)
        self.download = download
        self.augment = dataset == "cifar10" if augment is None else augment
        self.val_size = val_size
        self.seed = seed
        self.num_classes = self.spec.num_classes
        self.in_channels = len(self.spec.mean)
        if download:
            import_torchvision(f"{type(self).__name__}(download=True)")
        if self.augment:
            import_torchvision(f"{type(self).__name__}(augment=True) for {dataset}")

    def prepare_data(self) -> None:
        if self.download and missing_files(self.spec, self.root):
            tv = import_torchvision(f"{type(self).__name__}(download=True)")
            cls = getattr(tv.datasets, self.spec.torchvision_class)
            for train in (True, False):
                cls(str(self.root), train=train, download=True)

    def _augmentation(self) -> Any:
        if not self.augment:
            return None
        import_torchvision("augmentation")
        v2 = importlib.import_module("torchvision.transforms.v2")
        size = 32 if self.dataset == "cifar10" else 28
        steps = [v2.RandomCrop(size, padding=4)]
        if self.dataset == "cifar10":
            steps.append(v2.RandomHorizontalFlip())
        return v2.Compose(steps)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        missing = missing_files(self.spec, self.root)
        if missing:
            raise ConfigError(
                f"{self.dataset} files not found under {str(self.root.resolve())!r}: missing "
                f"{', '.join(missing)}. Put the dataset's files there in this layout (the one torchvision "
                f"downloads into), or set download: true (needs internet and torchvision: {INSTALL_HINT})"
            )
        images, labels = read_split(self.spec, self.root, "train")
        test_images, test_labels = read_split(self.spec, self.root, "test")
        if self.val_size >= len(labels):
            raise ConfigError(
                f"val_size={self.val_size} must be smaller than the {len(labels)} training images"
            )
        perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        train_idx, val_idx = perm[: -self.val_size], perm[-self.val_size :]
        mean, std = torch.tensor(self.spec.mean), torch.tensor(self.spec.std)
        self.train_set = ImageTensorDataset(
            images[train_idx], labels[train_idx], mean, std, self._augmentation()
        )
        self.val_set = ImageTensorDataset(images[val_idx], labels[val_idx], mean, std)
        self.test_set = ImageTensorDataset(test_images, test_labels, mean, std)
