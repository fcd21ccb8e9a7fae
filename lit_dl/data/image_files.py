"""Readers for the on-disk formats of MNIST / Fashion-MNIST (IDX files) and CIFAR-10 (python pickles).

The files are read here rather than through ``torchvision.datasets`` so that a missing or malformed
file is reported by name, and so that the data load without torchvision when no download and no
augmentation is asked for. The folder layout is the one torchvision downloads into, so a root that
torchvision filled works as is:

- MNIST: ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``
- Fashion-MNIST: ``<root>/FashionMNIST/raw/`` with the same file names
- CIFAR-10: ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch}``
"""

from __future__ import annotations

import gzip
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lit_dl.errors import ConfigError

__all__ = [
    "IMAGE_DATASETS",
    "ImageDatasetSpec",
    "missing_files",
    "read_cifar_batches",
    "read_idx",
    "read_split",
]


@dataclass(frozen=True)
class ImageDatasetSpec:
    """Where a dataset's files live under the root, their format, and its per-channel statistics."""

    folder: str
    files: dict[str, tuple[str, ...]]
    fmt: str  # "idx" or "cifar"
    torchvision_class: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int = 10


_MNIST_FILES: dict[str, tuple[str, ...]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGE_DATASETS: dict[str, ImageDatasetSpec] = {
    "mnist": ImageDatasetSpec("MNIST/raw", _MNIST_FILES, "idx", "MNIST", (0.1307,), (0.3081,)),
    "fashion_mnist": ImageDatasetSpec(
        "FashionMNIST/raw", _MNIST_FILES, "idx", "FashionMNIST", (0.2860,), (0.3530,)
    ),
    "cifar10": ImageDatasetSpec(
        "cifar-10-batches-py",
        {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        "cifar",
        "CIFAR10",
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
    ),
}

_IDX_DTYPES = {0x08: np.uint8}


def _find(path: Path) -> Path | None:
    """``path`` or ``path.gz``, whichever exists."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (plain or ``.gz``) of unsigned bytes into a ``uint8`` tensor of its shape."""
    found = _find(path)
    if found is None:
        raise ConfigError(f"{path}: no such file (nor {path.name}.gz)")
    opener = gzip.open if found.suffix == ".gz" else open
    with opener(found, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ConfigError(f"{found}: not an IDX file of unsigned bytes (magic number {data[:4].hex()!r})")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims)) if dims else 0
    if len(data) - header != expected:
        raise ConfigError(
            f"{found}: header announces shape {dims} ({expected} bytes) but holds {len(data) - header}"
        )
    array = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def read_cifar_batches(paths: list[Path]) -> tuple[Tensor, Tensor]:
    """Read CIFAR-10 python batches into ``uint8`` images ``(N, 3, 32, 32)`` and ``long`` labels.

    The batches are Python pickles, as distributed by the dataset's authors; like torchvision, this
    unpickles them, so only read files from a source you trust.
    """
    images, labels = [], []
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"{path}: no such file")
        with open(path, "rb") as f:
            try:
                batch = pickle.load(f, encoding="latin1")
            except Exception as err:
                raise ConfigError(f"{path}: not a CIFAR-10 python batch ({err})") from None
        if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
            raise ConfigError(
                f"{path}: not a CIFAR-10 python batch (expected a dict with 'data' and 'labels')"
            )
        data = np.asarray(batch["data"], dtype=np.uint8)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch["labels"]) != data.shape[0]:
            raise ConfigError(f"{path}: 'data' must be (N, 3072) with N labels, got {data.shape}")
        images.append(torch.from_numpy(data.reshape(-1, 3, 32, 32).copy()))
        labels.append(torch.as_tensor(batch["labels"], dtype=torch.long))
    return torch.cat(images), torch.cat(labels)


def read_split(spec: ImageDatasetSpec, root: Path, split: str) -> tuple[Tensor, Tensor]:
    """Images ``(N, C, H, W)`` (``uint8``) and labels of the ``"train"`` or ``"test"`` split."""
    folder = root / spec.folder
    if spec.fmt == "cifar":
        return read_cifar_batches([folder / name for name in spec.files[split]])
    image_file, label_file = (folder / name for name in spec.files[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ConfigError(
            f"{folder}: {image_file.name} has shape {tuple(images.shape)} and {label_file.name} "
            f"{tuple(labels.shape)}; expected (N, H, W) images and N labels"
        )
    return images.unsqueeze(1), labels.long()


def missing_files(spec: ImageDatasetSpec, root: Path) -> list[str]:
    """The expected files (relative to ``root``) that are absent (IDX files may be gzipped)."""
    names = [f"{spec.folder}/{n}" for files in spec.files.values() for n in files]
    if spec.fmt == "idx":
        return [n for n in names if _find(root / n) is None]
    return [n for n in names if not (root / n).is_file()]
