"""MNIST, Fashion-MNIST and CIFAR-10 from files on disk; torchvision only to download them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from lit_dl.data.batch_augment import AugmentParams, ImageAugment, ImageBatchTransform
from lit_dl.data.device_batches import DeviceResident
from lit_dl.data.image_files import IMAGE_DATASETS, missing_files, read_split
from lit_dl.data.in_memory import InMemoryDataModule, TensorBatchDataset
from lit_dl.data.sampling import run_seed
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


class ImageTensorDataset(TensorBatchDataset):
    """``uint8`` images ``(N, C, H, W)`` and labels; a batch is scaled to [0, 1], optionally augmented
    and normalised per channel by :class:`~lit_dl.data.batch_augment.ImageBatchTransform`, with tensor
    ops over the whole batch. The device-resident path applies the same ``batch_transform`` on the
    accelerator.

    Sample ``i`` is augmented with row ``i`` of
    :meth:`~lit_dl.data.batch_augment.ImageAugment.draw_epoch` for the ``(seed, epoch)`` last given to
    :meth:`set_epoch` (the training loader does so before each pass), never from the global RNG: the
    same crops and flips in every worker, on the device path, and in a resumed run.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, mean: Tensor, std: Tensor, augment: ImageAugment | None = None
    ):
        super().__init__(images, labels)
        self.images, self.labels = images, labels
        self.batch_transform = ImageBatchTransform(mean, std, augment)
        self.mean, self.std = self.batch_transform.mean, self.batch_transform.std
        self.augment = augment
        # (seed, epoch) of the pass being read. DataLoader workers read copies of the dataset made when
        # they start (persistent workers: once per fit); shared memory brings them every new epoch.
        self._epoch_key = torch.tensor([run_seed(), 0], dtype=torch.int64)
        if augment is not None:
            self._epoch_key.share_memory_()
        self._params: tuple[tuple[int, int], AugmentParams] | None = None  # the last epoch's draws

    def set_epoch(self, seed: int, epoch: int) -> None:
        """Augment the following batches as in ``epoch`` of a run seeded ``seed``, in this process and in
        all DataLoader workers (called by :class:`~lit_dl.data.resumable.ResumableDataLoader`)."""
        self._epoch_key.copy_(torch.tensor([seed, epoch], dtype=torch.int64))

    def _augment_params(self, idx: Tensor) -> AugmentParams | None:
        if self.augment is None:
            return None
        seed, epoch = self._epoch_key.tolist()
        if self._params is None or self._params[0] != (seed, epoch):
            self._params = ((seed, epoch), self.augment.draw_epoch(len(self.labels), seed, epoch))
        top, left, flip = self._params[1]
        return top[idx], left[idx], flip[idx]

    def _transform(self, idx: Tensor) -> Tensor:
        return self.batch_transform(self.images[idx], self._augment_params(idx))

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self._transform(torch.tensor([index]))[0], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self._transform(idx), self.labels[idx]


class VisionDataModule(InMemoryDataModule):
    """MNIST, Fashion-MNIST or CIFAR-10 as ``(C, H, W)`` float images normalised per channel.

    The files are read from ``root`` in the layout torchvision downloads into (see
    :mod:`lit_dl.data.image_files`); MNIST files may be gzipped. ``download: true`` fetches them
    with torchvision first. The last ``val_size`` images of a seeded permutation of the training
    files form the validation split; the test files are the test split.

    Augmentation of the training split (``augment``, default on for CIFAR-10 only) is the standard
    CIFAR recipe of He et al. (2016, Sec. 4.2): pad 4 pixels, random 32x32 crop, random horizontal
    flip, done on whole batches with tensor ops (:mod:`lit_dl.data.batch_augment`), on the GPU when
    the data live there (``device_resident``). Each sample's crop and flip are a function of the run's
    seed, the epoch and the sample, the same on both data paths and with any ``num_workers``. Horizontal flips are wrong for digits, so MNIST
    augmentation is the padded random crop alone. torchvision is needed for ``download`` only.

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
        device_resident: ``auto``, ``true`` or ``false``: keep the uint8 images on the accelerator
            and build, augment and normalise each batch there (see
            :class:`~lit_dl.data.InMemoryDataModule`). ``auto`` is on for CUDA when the data fit.
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
        device_resident: DeviceResident = "auto",
    ) -> None:
        super().__init__(batch_size, eval_batch_size, drop_last, num_workers, device_resident)
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

    def prepare_data(self) -> None:
        if self.download and missing_files(self.spec, self.root):
            tv = import_torchvision(f"{type(self).__name__}(download=True)")
            cls = getattr(tv.datasets, self.spec.torchvision_class)
            for train in (True, False):
                cls(str(self.root), train=train, download=True)

    def _augmentation(self) -> ImageAugment | None:
        if not self.augment:
            return None
        return ImageAugment(pad=4, flip=self.dataset == "cifar10")

    def input_normalization(self) -> tuple[Tensor, Tensor]:
        """``(mean, std)`` per channel, shaped ``(C, 1, 1)`` and scaled to raw ``uint8`` pixels: a raw
        image ``x`` (0..255) becomes the model's input ``(x - mean) / std``."""
        mean, std = torch.tensor(self.spec.mean), torch.tensor(self.spec.std)
        return (mean * 255.0).view(-1, 1, 1), (std * 255.0).view(-1, 1, 1)

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
