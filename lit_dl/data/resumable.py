"""A training loader whose order is a function of ``(seed, epoch, rank)`` and whose position is saved.

:class:`EpochSampler` draws each epoch's order from :mod:`lit_dl.data.sampling`, never from the
global RNG, so dropout masks or a callback drawing random numbers cannot change the data order, and
a resumed run sees the same batches as the uninterrupted one. :class:`ResumableDataLoader` counts the
batches it has handed out; Lightning stores a loader's ``state_dict()`` in every checkpoint and gives
it back through ``load_state_dict()`` on resume, so a run resumed from a mid-epoch checkpoint
(``ModelCheckpoint(every_n_train_steps=...)``) continues at the next batch of the same order.

The seed is the run's seed: the value ``seed_everything`` (``seed_everything:`` in the YAML) put in
the ``PL_GLOBAL_SEED`` environment variable, which Lightning also hands to DDP worker processes; 0 when
no seed was set.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lit_dl.data.sampling import epoch_generator, epoch_permutation, rank_shard

__all__ = ["EpochSampler", "ResumableDataLoader"]

# `stream` of lit_dl.data.sampling.epoch_generator for the DataLoader's worker base seed
# (0 is the sample order, 1 augmentation).
_WORKER_SEED_STREAM = 2


class EpochSampler(DistributedSampler):
    """Shuffled sample indices for one rank, fixed by ``(seed, epoch, rank)``.

    A ``DistributedSampler`` subclass, so Lightning neither replaces it under DDP nor forgets to call
    :meth:`set_epoch`; the rank and world size are given, not read from a process group.

    Args:
        dataset: The training split (only its length is used).
        seed: Seed of the order (the run's seed, see :func:`lit_dl.data.sampling.run_seed`).
        num_replicas: Number of processes sharing the epoch.
        rank: This process's share.
    """

    def __init__(self, dataset: Sized, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)  # type: ignore[arg-type]  # only len() is read
        self._start = 0

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(len(self.dataset), self.seed, self.epoch)  # type: ignore[arg-type]  # a Sized, see __init__
        share = rank_shard(order, self.rank, self.num_replicas, drop_last=self.drop_last)
        start, self._start = self._start, 0  # a skip applies to one pass only
        return iter(share[start:].tolist())

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self._start = 0
        self.epoch = epoch

    def skip(self, count: int) -> None:
        """Start the next pass over this epoch at its ``count``-th index."""
        self._start = int(count)

    def state_dict(self) -> dict[str, int]:
        return {"seed": int(self.seed), "epoch": int(self.epoch), "start": self._start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._start = int(state["start"])


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over an :class:`EpochSampler` that Lightning checkpoints and restores.

    Its ``state_dict()`` is ``{"seed", "epoch", "batches"}``: the batches of the epoch handed out so
    far. ``load_state_dict()`` makes the next pass skip them. DataLoader workers get a base seed fixed
    by ``(seed, epoch)`` (the loader's own generator, not the global RNG); persistent workers get it
    only once, so a dataset that draws random numbers must not read the workers' RNG: one with a
    ``set_epoch(seed, epoch)`` method is told each pass's seed and epoch before its first batch is
    fetched, and makes it reach its copies in the workers (as
    :class:`~lit_dl.data.vision.ImageTensorDataset` does through shared memory).
    """

    def __init__(self, dataset: Dataset, *, sampler: EpochSampler | Sampler, **kwargs: Any) -> None:
        kwargs.setdefault("generator", torch.Generator())
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._epoch = getattr(sampler, "epoch", 0)  # Lightning may rebuild it with another sampler
        self._batches = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]  # Lightning only iterates it
        # A generator: nothing below runs before the first batch is asked for, i.e. after Lightning
        # has called set_epoch() and, on resume, load_state_dict().
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # Lightning swapped the sampler (overfit_batches)
            yield from super().__iter__()
            return
        self._epoch = sampler.epoch
        self._batches = sampler._start // self._samples_per_batch()
        set_dataset_epoch = getattr(self.dataset, "set_epoch", None)
        if callable(set_dataset_epoch):  # before the workers fetch this pass's first batch
            set_dataset_epoch(sampler.seed, sampler.epoch)
        worker_seed = epoch_generator(sampler.seed, sampler.epoch, _WORKER_SEED_STREAM).initial_seed()
        self.generator.manual_seed(worker_seed)
        for batch in super().__iter__():
            self._batches += 1
            yield batch

    def _samples_per_batch(self) -> int:
        # batch_size=None turns automatic batching off: each item handed out is one sample.
        return 1 if self.batch_size is None else self.batch_size

    def state_dict(self) -> dict[str, int]:
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):
            return {}
        return {"seed": int(sampler.seed), "epoch": self._epoch, "batches": self._batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        sampler = self.sampler
        if not state or not isinstance(sampler, EpochSampler):
            return
        sampler.seed = int(state["seed"])
        sampler.set_epoch(int(state["epoch"]))
        sampler.skip(int(state["batches"]) * self._samples_per_batch())
        self._epoch, self._batches = int(state["epoch"]), int(state["batches"])
