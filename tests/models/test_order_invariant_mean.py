"""OrderInvariantMean: the same bits whatever the order of the updates and the process that saw them."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torchmetrics import MeanMetric

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier
from lit_dl.models.order_invariant_mean import OrderInvariantMean


def batches(n: int = 40, seed: int = 0) -> list[tuple[torch.Tensor, int]]:
    g = torch.Generator().manual_seed(seed)
    values = torch.rand(n, generator=g) * torch.logspace(-6, 1, n)  # float32 losses of mixed scale
    sizes = torch.randint(1, 65, (n,), generator=g).tolist()
    return list(zip(values, sizes, strict=True))


def mean_of(metric_cls, updates):
    metric = metric_cls()
    for value, weight in updates:
        metric.update(value, weight)
    return metric


def test_two_shards_merged_equal_one_process_bit_for_bit():
    updates = batches()
    one = mean_of(OrderInvariantMean, updates).compute()
    # rank 0 saw batches 0, 2, 4, ...; rank 1 saw 1, 3, 5, ...; the sync concatenates their states
    rank0, rank1 = mean_of(OrderInvariantMean, updates[0::2]), mean_of(OrderInvariantMean, updates[1::2])
    rank0.merge_state(rank1)
    assert torch.equal(rank0.compute(), one)
    assert torch.equal(mean_of(OrderInvariantMean, updates[::-1]).compute(), one)
    exact = sum(float(v) * w for v, w in updates) / sum(w for _, w in updates)
    assert one.dtype == torch.float32
    assert abs(one.item() - exact) <= 1e-7 * exact


def test_a_running_float32_sum_is_not_order_invariant_on_the_same_data():
    # why MeanMetric is not used: the same updates in another order give other bits
    updates = batches()
    forward = mean_of(MeanMetric, updates).compute()
    backward = mean_of(MeanMetric, updates[::-1]).compute()
    assert not torch.equal(forward, backward)


def test_updates_after_an_inference_mode_compute_and_reset():
    metric = OrderInvariantMean()
    with torch.inference_mode():
        metric.update(torch.tensor(2.0), 3)
        assert metric.compute() == 2.0
        metric.reset()
    metric.update(torch.tensor(1.0), 1)
    metric.update(torch.tensor(4.0), 3)
    assert metric.compute() == 13.0 / 4
    with pytest.warns(UserWarning, match="called before the ``update``"):
        assert torch.isnan(OrderInvariantMean().compute())


def test_the_task_starts_every_validation_epoch_with_empty_metrics():
    # The task resets its metrics at each epoch end once it has computed them (Lightning does so for
    # the metric objects that validate and test log), and again at each epoch start.
    class Census(L.Callback):
        def __init__(self) -> None:
            self.at_start: list[tuple[int, int]] = []

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            self.at_start.append(
                (len(pl_module.eval_loss["val"].terms), pl_module.eval_metrics["val"]["acc"]._update_count)
            )

    census = Census()
    model = MLPClassifier(num_classes=3, in_features=8, hidden_sizes=[8])
    data = SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=64, num_val=40, batch_size=16
    )
    trainer = L.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[census]
    )
    trainer.fit(model, datamodule=data)
    assert census.at_start == [(0, 0)] * 3  # sanity check + 2 epochs
    assert len(model.eval_loss["val"].terms) == 0
