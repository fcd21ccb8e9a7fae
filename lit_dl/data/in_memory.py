"""Data modules whose splits are tensors held in memory.

Small datasets (the digits, synthetic tasks) fit in memory many times over; building each batch by
indexing the whole tensor once (``Dataset.__getitems__``) replaces the per-sample ``__getitem__``
calls and the collation that a ``TensorDataset`` costs for every batch. The loaders are plain
``DataLoader`` objects: under DDP Lightning swaps a ``DistributedSampler`` into the training loader,
while the evaluation loaders bring their own :class:`~lit_dl.data.eval_sampler.EvalShardSampler`
(every sample once, in the batches one process reads). On an accelerator with room for the splits
they are :class:`~lit_dl.data.device_batches.DeviceBatches` instead (``device_resident``; evaluation
under DDP keeps the ``EvalShardSampler`` loaders).
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Sized
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from lit_dl.data.device_batches import DeviceBatches, DeviceResident, device_batches_for
from lit_dl.data.eval_sampler import EvalShardSampler
from lit_dl.data.resumable import EpochSampler, ResumableDataLoader
from lit_dl.data.sampling import run_seed
from lit_dl.errors import ConfigError

__all__ = ["InMemoryDataModule", "TensorBatchDataset"]


class TensorBatchDataset(Dataset):
    """Like ``TensorDataset``, but a whole batch is fetched with one indexing op per tensor."""

    def __init__(self, *tensors: Tensor) -> None:
        if not tensors or any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            raise ValueError("TensorBatchDataset needs tensors with the same first dimension")
        self.tensors = tensors

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, ...]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return tuple(t[idx] for t in self.tensors)


def _batched(batch: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """Collate function for batches already built by ``__getitems__`` (module-level: picklable)."""
    return batch


class InMemoryDataModule(L.LightningDataModule):
    """Base for data modules whose splits are held in memory as tensors.

    Subclasses fill ``self.train_set``, ``self.val_set``, ``self.test_set`` in ``setup`` and set
    ``self.num_classes``. A ``TensorBatchDataset`` split is fetched a whole batch at a time; any other
    map-style dataset (one that transforms each sample, say) is collated sample by sample.

    Args:
        batch_size: Samples per training batch (per device under DDP).
        eval_batch_size: Samples per validation/test/predict batch; defaults to ``batch_size``. Under
            DDP whole batches are dealt to the processes, so each split needs at least one batch per
            process.
        drop_last: Drop the last incomplete training batch (a batch of one breaks BatchNorm's
            statistics); a new shuffle each epoch still shows every sample over time. Judged on the
            share of one process: a share of at most one batch is kept whole.
        num_workers: DataLoader worker processes (0: load in the training process, right for
            tensors already in memory).
        device_resident: Keep the splits on the accelerator and build (and augment) each batch there,
            with the order and augmentation a function of ``(seed, epoch, rank)``
            (:mod:`lit_dl.data.device_batches`): ``"auto"`` on CUDA when the splits take at most a
            quarter of the free GPU memory; ``true`` always (an error when they do not fit; on the CPU
            the same batched path without a copy); ``false`` the ``DataLoader`` path, with pinned
            memory on CUDA.
    """

    def __init__(
        self,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        drop_last: bool = True,
        num_workers: int = 0,
        device_resident: DeviceResident = "auto",
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size!r}")
        if eval_batch_size is not None and eval_batch_size < 1:
            raise ConfigError(f"eval_batch_size must be >= 1, got {eval_batch_size!r}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers!r}")
        if device_resident not in (True, False, "auto"):
            raise ConfigError(f"device_resident must be auto, true or false, got {device_resident!r}")
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.drop_last = drop_last
        self.num_workers = num_workers
        self.device_resident = device_resident
        self.num_classes: int | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def _world(self) -> tuple[int, int]:
        """``(world_size, global_rank)`` of the attached Trainer; ``(1, 0)`` without one."""
        trainer = self.trainer
        return (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader | DeviceBatches:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not been called")
        sized = cast(Sized, dataset)  # map-style splits (len() and indices)
        world, rank = self._world()
        on_device = device_batches_for(self, dataset, train) if train or world == 1 else None
        if on_device is not None:
            return on_device
        # Judged on the share one rank reads (DistributedSampler pads it to ceil(n / world)): dropping
        # the last batch of a share no larger than one batch would leave that rank nothing to train on.
        shard = math.ceil(len(sized) / world)
        # Lightning copies batches with non_blocking=True; from pinned memory that overlaps the step.
        pin = self.trainer is not None and self.trainer.strategy.root_device.type == "cuda"
        kwargs: dict[str, Any] = {
            "batch_size": self.batch_size if train else self.eval_batch_size,
            "drop_last": train and self.drop_last and shard > self.batch_size,
            "collate_fn": _batched if isinstance(dataset, TensorBatchDataset) else None,
            "num_workers": self.num_workers,
            "persistent_workers": self.num_workers > 0,
            "pin_memory": pin,
        }
        if train:  # order fixed by (seed, epoch, rank), position saved in checkpoints: exact resume
            sampler = EpochSampler(sized, seed=run_seed(), num_replicas=world, rank=rank)
            return ResumableDataLoader(dataset, sampler=sampler, **kwargs)
        if world > 1:
            kwargs["sampler"] = EvalShardSampler(sized, kwargs["batch_size"], num_replicas=world, rank=rank)
        return DataLoader(dataset, shuffle=False, **kwargs)

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        """Shuffled by :class:`~lit_dl.data.resumable.EpochSampler` from the run's seed and the epoch
        (see :mod:`lit_dl.data.resumable`), resumable mid-epoch."""
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader(self.test_set, train=False)

    def predict_dataloader(self) -> DataLoader | DeviceBatches:
        """The test split (features and labels; ``predict_step`` uses the features)."""
        return self._loader(self.test_set, train=False)
