"""The training loader: order fixed by (seed, epoch, rank), never by the global RNG; its position
survives a state_dict round trip mid-epoch."""

from __future__ import annotations

import torch
from torch.utils.data import SequentialSampler, TensorDataset

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.data.in_memory import TensorBatchDataset, _batched
from lit_dl.data.resumable import EpochSampler, ResumableDataLoader
from lit_dl.data.sampling import epoch_permutation, rank_shard


def loader(
    n: int = 40, batch_size: int = 8, seed: int = 5, world: int = 1, rank: int = 0
) -> ResumableDataLoader:
    data = TensorBatchDataset(torch.arange(n))
    sampler = EpochSampler(data, seed=seed, num_replicas=world, rank=rank)
    return ResumableDataLoader(
        data, sampler=sampler, batch_size=batch_size, drop_last=True, collate_fn=_batched
    )


def batches(it) -> list[list[int]]:
    return [b[0].tolist() for b in it]


def flat(lists: list[list[int]]) -> list[int]:
    return [i for sub in lists for i in sub]


def test_order_is_the_epoch_permutation_whatever_the_global_rng_did() -> None:
    first = loader()
    first.sampler.set_epoch(3)
    torch.manual_seed(0)
    a = batches(first)
    torch.manual_seed(1)
    torch.rand(10)
    b = batches(first)
    assert a == b
    assert flat(a) == epoch_permutation(40, 5, 3).tolist()
    first.sampler.set_epoch(4)
    assert batches(first) != a


def test_ranks_read_the_distributed_sampler_shards() -> None:
    for rank in range(2):
        shard = loader(world=2, rank=rank)
        shard.sampler.set_epoch(1)
        assert flat(batches(shard)) == rank_shard(epoch_permutation(40, 5, 1), rank, 2).tolist()[:16]


def test_mid_epoch_state_resumes_at_the_next_batch() -> None:
    whole = loader()
    whole.sampler.set_epoch(2)
    expected = batches(whole)
    first = loader()
    first.sampler.set_epoch(2)
    it = iter(first)
    seen = [next(it)[0].tolist() for _ in range(2)]
    state = first.state_dict()
    assert state == {"seed": 5, "epoch": 2, "batches": 2}
    resumed = loader(seed=99)  # the checkpoint's seed wins
    resumed.load_state_dict(state)
    resumed.sampler.set_epoch(2)  # Lightning sets the same epoch again on resume
    assert seen + batches(resumed) == expected
    assert resumed.state_dict() == {"seed": 5, "epoch": 2, "batches": 5}
    resumed.sampler.set_epoch(3)  # the skip applied to the interrupted epoch only
    assert len(batches(resumed)) == 5


def test_datamodule_train_loader_is_seeded_by_the_run_seed(monkeypatch) -> None:
    data = SyntheticClassificationDataModule(num_train=32, batch_size=8)
    data.setup("fit")
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    train = data.train_dataloader()
    assert isinstance(train, ResumableDataLoader)
    assert train.sampler.seed == 7
    labels = torch.cat([b[1] for b in train])
    assert torch.equal(labels, data.train_set.tensors[1][epoch_permutation(32, 7, 0)])


def test_a_loader_rebuilt_with_another_sampler_reads_it_plainly() -> None:
    # Lightning rebuilds the loader with a SequentialSampler for `overfit_batches`
    data = TensorBatchDataset(torch.arange(12))
    plain = ResumableDataLoader(data, sampler=SequentialSampler(data), batch_size=4, collate_fn=_batched)
    assert flat(batches(plain)) == list(range(12))
    assert plain.state_dict() == {}
    plain.load_state_dict({})


def test_unbatched_loader_resumes_at_the_next_sample() -> None:
    # batch_size=None: no automatic batching, each item handed out is one sample
    data = TensorDataset(torch.arange(12))

    def unbatched() -> ResumableDataLoader:
        return ResumableDataLoader(data, sampler=EpochSampler(data, seed=3), batch_size=None)

    whole = unbatched()
    expected = [int(x) for (x,) in whole]
    assert expected == epoch_permutation(12, 3, 0).tolist()
    first = unbatched()
    it = iter(first)
    seen = [int(next(it)[0]) for _ in range(5)]
    state = first.state_dict()
    assert state == {"seed": 3, "epoch": 0, "batches": 5}
    resumed = unbatched()
    resumed.load_state_dict(state)
    assert seen + [int(x) for (x,) in resumed] == expected
    assert resumed.state_dict() == {"seed": 3, "epoch": 0, "batches": 12}
