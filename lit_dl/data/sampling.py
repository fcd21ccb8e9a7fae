"""Data order as a pure function of ``(seed, epoch, rank)``: the same numbers in a resumed run, on N
processes, on the CPU loader path and on the device-resident path.

Nothing here reads the global RNG, so dropout masks or a callback drawing random numbers cannot
change which samples a step sees. The sharding follows ``torch.utils.data.DistributedSampler``
(every rank takes every ``world_size``-th index of the epoch's permutation).
"""

from __future__ import annotations

import math
import os

import torch
from torch import Tensor

__all__ = ["epoch_generator", "epoch_permutation", "rank_shard", "run_seed"]

# Large odd multipliers spread (seed, epoch, stream) over the 64-bit seed space (splitmix64's
# constants); the result stays a Python int that torch.Generator.manual_seed accepts.
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def run_seed() -> int:
    """The run's seed, as ``seed_everything`` (``seed_everything:`` in the YAML) recorded it in
    ``PL_GLOBAL_SEED``, which Lightning also hands to DDP processes; 0 when no seed was set. The seed
    of the training order on every data path."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator seeded from ``(seed, epoch, stream)``; ``stream`` separates independent uses
    (0: the sample order, 1: augmentation, ...) so they never share random numbers."""
    mixed = (int(seed) * _MIX[0] + int(epoch) * _MIX[1] + int(stream) * _MIX[2]) % (2**63)
    return torch.Generator().manual_seed(mixed)


def epoch_permutation(n: int, seed: int, epoch: int) -> Tensor:
    """The order of ``n`` samples in ``epoch``: a permutation (int64, CPU) fixed by ``(seed, epoch)``."""
    return torch.randperm(n, generator=epoch_generator(seed, epoch, stream=0))


def rank_shard(indices: Tensor, rank: int, world_size: int, drop_last: bool = False) -> Tensor:
    """The share of ``indices`` that ``rank`` reads, as ``DistributedSampler`` splits them.

    Every rank gets the same count: with ``drop_last`` the tail that does not divide evenly is dropped,
    otherwise the list is padded by repeating its start (a training epoch may see a few samples twice;
    evaluation must not pad: see the unrepeated evaluation samplers).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    n = indices.numel()
    if drop_last:
        per_rank = n // world_size
        indices = indices[: per_rank * world_size]
    else:
        per_rank = math.ceil(n / world_size)
        pad = per_rank * world_size - n
        if pad:
            reps = math.ceil(pad / max(n, 1))
            indices = torch.cat([indices, indices.repeat(reps)[:pad]])
    return indices[rank::world_size]
