"""Device-resident batches: a split held on the accelerator, gathered and augmented there.

A DataLoader over images in memory spends its time in Python per sample and in host-to-device copies;
on a GPU that bounds a ResNet-18 on CIFAR-10 at a fraction of what the network runs at. When the
split fits in accelerator memory, :class:`DeviceBatches` moves its tensors there once (``uint8``
images: CIFAR-10's 50,000 training images take 150 MB) and builds each batch with one index gather
plus the batched augmentation of :mod:`lit_dl.data.batch_augment`: no workers, no per-sample Python,
no copies per step, no host synchronisation.

Order and augmentation are pure functions of ``(seed, epoch)`` through :mod:`lit_dl.data.sampling`
and :meth:`~lit_dl.data.batch_augment.ImageAugment.draw_epoch`, the functions the ``DataLoader`` path
uses too (the same batches, ``torch.equal``, on the CPU): the training order is the epoch's
permutation, each rank reads its ``DistributedSampler``-style shard of it, and each sample's crop and
flip are drawn for the whole split, so a sample is augmented the same way whichever rank reads it. Evaluation splits are
read in order, each rank every ``world_size``-th sample, nothing repeated.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import Tensor

from lit_dl._lightning import batches_processed_this_epoch
from lit_dl.data.batch_augment import AugmentParams, ImageBatchTransform
from lit_dl.data.sampling import epoch_permutation, rank_shard, run_seed
from lit_dl.errors import ConfigError

__all__ = ["AUTO_MEMORY_SHARE", "DeviceBatches", "DeviceResident", "resident_device"]

DeviceResident = bool | Literal["auto"]
AUTO_MEMORY_SHARE = 0.25
"""``auto`` keeps the splits on the accelerator when they take at most this share of its free memory."""


def split_bytes(tensors: tuple[Tensor, ...]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def resident_device(setting: DeviceResident, device: torch.device, need: int) -> torch.device | None:
    """The device the splits should live on, or ``None`` for the CPU loader path.

    Args:
        setting: ``True``, ``False`` or ``"auto"`` (on for CUDA when ``need`` fits comfortably).
        device: The Trainer's root device.
        need: Bytes of all splits that would move.

    Raises:
        ConfigError: ``setting`` is ``True`` and the splits do not fit in the device's free memory.
    """
    if setting is False:
        return None
    if device.type != "cuda":
        # On the CPU the tensors are already in place; `true` still takes the batched path (tests, CPU runs).
        return device if setting is True else None
    free, _ = torch.cuda.mem_get_info(device)
    if setting == "auto":
        return device if need <= AUTO_MEMORY_SHARE * free else None
    if need > 0.9 * free:
        raise ConfigError(
            f"device_resident=True but the data splits need {need / 2**30:.2f} GiB and {device} has "
            f"{free / 2**30:.2f} GiB free; set device_resident: auto or false"
        )
    return device


def _consumed_batches(trainer: Any) -> int | None:
    """Training batches the fit loop has run this epoch (:func:`lit_dl._lightning.batches_processed_this_epoch`).

    The loop fetches one batch ahead, so the iterator's own count would be one too many in a checkpoint
    saved mid-epoch.
    """
    try:
        return batches_processed_this_epoch(trainer)
    except AttributeError:
        return None


class DeviceBatches:
    """The batches of one split whose tensors live on one device; an iterable Lightning accepts as a loader.

    Args:
        tensors: The split's tensors (features first, labels last), already on the target device.
        batch_size: Samples per batch.
        train: Shuffle per epoch, shard like ``DistributedSampler`` and augment; else read in order.
        drop_last: Drop the last incomplete training batch.
        seed: Seed of the order and the augmentation (see :func:`lit_dl.data.sampling.run_seed`: the CPU loader's seed too).
        rank: This process's global rank.
        world_size: Number of processes.
        transform: Turns the stored features of a batch into the model's inputs (``uint8`` images into
            normalised, augmented floats); ``None`` passes them through.
        trainer: The Trainer, to read the batch position of a mid-epoch checkpoint.
    """

    def __init__(
        self,
        tensors: tuple[Tensor, ...],
        batch_size: int,
        train: bool,
        drop_last: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        transform: ImageBatchTransform | None = None,
        trainer: Any = None,
    ) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        self.train = train
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.transform = transform
        self.trainer = trainer
        self.epoch = 0
        self.num_samples = tensors[0].shape[0]
        per_rank = (
            math.ceil(self.num_samples / world_size)
            if train
            else len(range(rank, self.num_samples, world_size))
        )
        self.drop_last = train and drop_last and per_rank > batch_size
        self._per_rank = per_rank
        self._served = 0
        self._resume: tuple[int, int] | None = None  # (epoch, batches already consumed)
        self.device = tensors[0].device
        self._pin = self.device.type == "cuda"

    batch_sampler = None  # Lightning (2.6) reads loader.batch_sampler where a loader has a sampler

    @property
    def sampler(self) -> DeviceBatches:
        """Lightning calls ``loader.sampler.set_epoch(epoch)`` before every epoch."""
        return self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self._per_rank, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def indices(self) -> Tensor:
        """This rank's sample indices for the current epoch, in order (CPU, int64)."""
        if not self.train:
            return torch.arange(self.rank, self.num_samples, self.world_size)
        order = epoch_permutation(self.num_samples, self.seed, self.epoch)
        return rank_shard(order, self.rank, self.world_size, drop_last=False)

    def augment_params(self) -> AugmentParams | None:
        """Crop and flip of every sample of the split this epoch (CPU), or ``None`` without augmentation."""
        if not self.train or self.transform is None or self.transform.augment is None:
            return None
        return self.transform.augment.draw_epoch(self.num_samples, self.seed, self.epoch)

    def _to_device(self, t: Tensor) -> Tensor:
        # Pinned + non_blocking: the copy (once per epoch) does not synchronise with the host.
        return (t.pin_memory() if self._pin else t).to(self.device, non_blocking=True)

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        start = 0
        if self._resume is not None:
            epoch, position = self._resume
            self._resume = None
            if epoch == self.epoch:
                start = position
        order = self._to_device(self.indices())
        transform = self.transform
        params = self.augment_params()  # None without a transform
        if params is not None:
            params = (self._to_device(params[0]), self._to_device(params[1]), self._to_device(params[2]))
        *features, labels = self.tensors
        for i in range(start, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            batch = [t[idx] for t in features]
            if transform is not None and params is not None:
                batch[0] = transform(batch[0], (params[0][idx], params[1][idx], params[2][idx]))
            elif transform is not None:
                batch[0] = transform.normalise(batch[0])
            self._served = i + 1
            yield (*batch, labels[idx])

    def state_dict(self) -> dict[str, int]:
        """The epoch and the training batches already consumed in it (for a mid-epoch resume)."""
        consumed = _consumed_batches(self.trainer) if self.trainer is not None else None
        return {"epoch": self.epoch, "position": self._served if consumed is None else consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume the saved epoch after its consumed batches (ignored for another epoch)."""
        self._resume = (int(state["epoch"]), int(state["position"]))


def device_batches_for(datamodule: Any, dataset: Any, train: bool) -> DeviceBatches | None:
    """The device-resident loader of one split of ``datamodule``, or ``None`` for the CPU loader path.

    Reads ``datamodule.device_resident`` and ``datamodule.trainer``; the split's ``tensors`` (a
    :class:`~lit_dl.data.in_memory.TensorBatchDataset`) move to the device once, on the first call, and
    its ``batch_transform`` (if any) builds the model's inputs there.

    Raises:
        ConfigError: ``device_resident`` is ``True`` and the split is not held as tensors, or the
            splits do not fit (see :func:`resident_device`).
    """
    setting = getattr(datamodule, "device_resident", False)
    if setting is False:
        return None
    tensors = getattr(dataset, "tensors", None)
    if tensors is None:
        if setting is True:
            raise ConfigError(
                f"device_resident=True needs splits held as tensors, but {type(datamodule).__name__} gives a "
                f"{type(dataset).__name__}; set device_resident: auto or false"
            )
        return None
    trainer = datamodule.trainer
    cache: dict[Any, Any] = datamodule.__dict__.setdefault("_device_splits", {})
    if "device" not in cache:
        root = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        splits: list[Any] = [getattr(datamodule, name, None) for name in ("train_set", "val_set", "test_set")]
        need = sum(split_bytes(s.tensors) for s in splits if getattr(s, "tensors", None) is not None)
        cache["device"] = resident_device(setting, root, need)
    device = cache["device"]
    if device is None:
        return None
    if id(dataset) not in cache:
        cache[id(dataset)] = tuple(t.to(device) for t in tensors)
    transform = getattr(dataset, "batch_transform", None)
    return DeviceBatches(
        cache[id(dataset)],
        batch_size=datamodule.batch_size if train else datamodule.eval_batch_size,
        train=train,
        drop_last=datamodule.drop_last,
        seed=run_seed(),
        rank=trainer.global_rank if trainer is not None else 0,
        world_size=trainer.world_size if trainer is not None else 1,
        transform=None if transform is None else transform.to(device),
        trainer=trainer,
    )
