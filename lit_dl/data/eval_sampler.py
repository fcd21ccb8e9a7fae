"""Evaluation under N processes that sees every sample exactly once, in the same batches as one process.

``torch.utils.data.DistributedSampler`` pads a split to a multiple of the world size with repeated
samples (they are counted twice) and deals single samples round-robin (so every batch holds other
samples than on one process, and float results differ in the last bits). Here the split is cut into
the batches one process would read, ``[0, b), [b, 2b), ...``, and the batches are dealt round-robin:
rank ``r`` of ``W`` reads batches ``r, r + W, r + 2W, ...``. Nothing is repeated; ranks differ by at
most one batch, which evaluation allows (no gradient all-reduce; DDP syncs buffers on the first
evaluation batch only, so every rank needs at least one batch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from torch import Tensor
from torch.utils.data import DistributedSampler

from lit_dl.errors import ConfigError

__all__ = ["EvalShardSampler", "eval_shard"]


def eval_shard(n: int, batch_size: int, rank: int, world_size: int) -> Tensor:
    """The sample indices (int64, in reading order) that ``rank`` evaluates: the batches
    ``rank, rank + world_size, ...`` of ``n`` samples cut into batches of ``batch_size``.

    Raises:
        ConfigError: the split has fewer batches than processes (a rank would get none).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    num_batches = math.ceil(n / batch_size)
    if num_batches < world_size:
        fix = (
            f"set data.init_args.eval_batch_size <= {n // world_size}"
            if n >= world_size
            else "use fewer processes"
        )
        raise ConfigError(
            f"an evaluation split of {n} samples makes {num_batches} batch(es) of eval_batch_size={batch_size}, "
            f"but each of the {world_size} processes needs at least one batch: {fix}"
        )
    batches = torch.arange(rank, num_batches, world_size)
    starts = batches * batch_size
    return torch.cat([torch.arange(s, min(s + batch_size, n)) for s in starts.tolist()])


class EvalShardSampler(DistributedSampler):
    """The :func:`eval_shard` of ``rank`` as a sampler; feed it to a ``DataLoader`` with the same
    ``batch_size`` (and ``drop_last=False``) to get exactly the batches one process would read.

    It subclasses ``DistributedSampler`` so that Lightning keeps it instead of injecting its own
    (``Trainer(use_distributed_sampler=True)`` replaces only samplers that are not distributed).

    Args:
        dataset: The evaluation split (sized).
        batch_size: The evaluation batch size of the loader this sampler feeds.
        num_replicas: World size.
        rank: This process's global rank.
    """

    def __init__(self, dataset: Sized, batch_size: int, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)  # type: ignore[arg-type]
        self.batch_size = batch_size
        self.indices = eval_shard(len(dataset), batch_size, rank, num_replicas)
        self.num_samples = self.indices.numel()
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices.tolist())

    def __len__(self) -> int:
        return self.num_samples
