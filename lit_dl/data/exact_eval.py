"""Exact evaluation under N processes for any data module, not only lit_dl's own.

Lightning gives a distributed evaluation loader a ``DistributedSampler``, which pads a split to a
multiple of the world size with repeated samples: a plain ``LightningDataModule``'s test metrics on two
processes then count duplicates. :func:`shard_eval_loaders` makes the data module's
``val_dataloader``, ``test_dataloader`` and ``predict_dataloader`` return their loader rebuilt with an
:class:`~lit_dl.data.EvalShardSampler` (every sample once, in the batches one process reads) when a
Trainer runs more than one process. Lightning keeps a distributed sampler it finds and injects none.

Loaders it leaves as they are: one process; a sampler the data module chose itself (not the default
sequential one; lit_dl's data modules already shard exactly); a loader without a ``batch_size``
(a custom ``batch_sampler``); anything that is not a ``DataLoader``. An ``IterableDataset`` cannot
be sharded by index: each process evaluates what its iterator yields, and a line says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sized
from typing import Any, cast

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.utils.data import DataLoader, IterableDataset, SequentialSampler

from lit_dl._lightning import rebuild_dataloader
from lit_dl.data.eval_sampler import EvalShardSampler

__all__ = ["exact_eval_loader", "shard_eval_loaders"]

_EVAL_HOOKS = ("val_dataloader", "test_dataloader", "predict_dataloader")


def exact_eval_loader(loader: Any, world_size: int, rank: int, split: str = "evaluation") -> Any:
    """``loader`` with an :class:`EvalShardSampler` of ``rank`` in place of its sequential sampler, when
    ``world_size > 1`` and the loader can be sharded (see the module's docstring); else ``loader``."""
    if world_size <= 1 or not isinstance(loader, DataLoader):
        return loader
    if isinstance(loader.dataset, IterableDataset):
        rank_zero_info(
            f"The {split} split is an IterableDataset: lit_dl cannot shard it by index, so each of the "
            f"{world_size} processes evaluates what its iterator yields (exact only if the dataset "
            "splits itself by rank)"
        )
        return loader
    if not isinstance(loader.sampler, SequentialSampler) or loader.batch_size is None:
        return loader
    sampler = EvalShardSampler(
        cast(Sized, loader.dataset), loader.batch_size, num_replicas=world_size, rank=rank
    )
    return rebuild_dataloader(loader, sampler)


def shard_eval_loaders(datamodule: L.LightningDataModule) -> None:
    """Make the evaluation hooks that ``datamodule`` defines return exactly sharded loaders under N
    processes (:func:`exact_eval_loader`). Hooks it does not define stay undefined (Lightning reads
    an undefined ``test_dataloader`` as "no test split")."""
    for hook in _EVAL_HOOKS:
        if is_overridden(hook, datamodule) and not getattr(getattr(datamodule, hook), "_lit_dl_exact", False):
            setattr(datamodule, hook, _sharded(datamodule, getattr(datamodule, hook), hook))


def _sharded(datamodule: L.LightningDataModule, hook: Callable[[], Any], name: str) -> Callable[[], Any]:
    @functools.wraps(hook)
    def loaders() -> Any:
        result = hook()
        trainer = datamodule.trainer
        if trainer is None or trainer.world_size <= 1:
            return result
        split = name.removesuffix("_dataloader")
        world, rank = trainer.world_size, trainer.global_rank
        if isinstance(result, (list, tuple)):
            return type(result)(exact_eval_loader(loader, world, rank, split) for loader in result)
        if isinstance(result, dict):
            return {key: exact_eval_loader(loader, world, rank, split) for key, loader in result.items()}
        return exact_eval_loader(result, world, rank, split)

    loaders._lit_dl_exact = True  # type: ignore[attr-defined]
    return loaders
