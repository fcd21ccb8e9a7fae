"""Evaluation sharding under N processes: every sample once, in the batches one process reads."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lit_dl.data import EvalShardSampler, SyntheticClassificationDataModule, eval_shard
from lit_dl.errors import ConfigError


def one_process_batches(n: int, batch: int) -> list[list[int]]:
    return [list(range(s, min(s + batch, n))) for s in range(0, n, batch)]


@pytest.mark.parametrize(
    ("n", "batch", "world"), [(201, 16, 2), (189, 64, 2), (10, 3, 3), (7, 7, 1), (65, 8, 4)]
)
def test_ranks_read_each_sample_once_in_the_one_process_batches(n, batch, world):
    shards = [eval_shard(n, batch, rank, world) for rank in range(world)]
    assert torch.equal(torch.sort(torch.cat(shards)).values, torch.arange(n))
    # re-batched with the same batch size, rank r holds exactly the batches r, r + world, ...
    expected = one_process_batches(n, batch)
    for rank, shard in enumerate(shards):
        got = [chunk.tolist() for chunk in shard.split(batch)]
        assert got == expected[rank::world]
    counts = [len(s.split(batch)) for s in shards]
    assert max(counts) - min(counts) <= 1


def test_a_split_with_fewer_batches_than_processes_is_an_error():
    with pytest.raises(
        ConfigError,
        match=r"split of 20 samples makes 2 batch\(es\) of eval_batch_size=16.*3 processes.*eval_batch_size <= 6",
    ):
        eval_shard(20, 16, 0, 3)
    with pytest.raises(ConfigError, match="use fewer processes"):
        eval_shard(2, 1, 0, 3)


def test_datamodule_under_two_processes_shards_eval_and_keeps_a_small_training_share():
    # A Trainer for 2 CPU processes launches nothing until fit(), yet reports world_size 2 and rank 0.
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_checkpointing=False
    )
    dm = SyntheticClassificationDataModule(
        num_classes=3, num_features=4, num_train=100, num_val=150, batch_size=64
    )
    dm.setup("fit")
    dm.trainer = trainer
    val = dm.val_dataloader()
    assert isinstance(val.sampler, EvalShardSampler)
    assert [b[1].shape[0] for b in val] == [len(x) for x in one_process_batches(len(dm.val_set), 64)[0::2]]
    # 100 samples are 50 per rank: dropping "the last incomplete batch" of 64 would leave rank 0 nothing
    train = dm.train_dataloader()
    assert train.drop_last is False
    dm.trainer = None
    assert dm.train_dataloader().drop_last is True  # one process: 100 samples, one full batch and a tail
    assert not isinstance(dm.val_dataloader().sampler, EvalShardSampler)
