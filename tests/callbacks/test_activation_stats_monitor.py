from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from cb_helpers import LIGHTNING_PYTREE_WARNING, read_events, tiny_data, tiny_model, tiny_trainer
from torch import nn

from lit_dl.callbacks import ActivationStatsMonitor
from lit_dl.errors import ConfigError

pytestmark = LIGHTNING_PYTREE_WARNING


def test_stats_of_the_first_step_match_a_direct_computation(tmp_path) -> None:
    # One batch holding the whole training set: the measured batch is known whatever the shuffle.
    data = tiny_data(num_train=32, batch_size=32)
    model = tiny_model(activation="tanh")
    before = copy.deepcopy(model)
    monitor = ActivationStatsMonitor(every_n_steps=1)
    trainer = tiny_trainer(tmp_path, [monitor], limit_train_batches=1)
    trainer.fit(model, datamodule=data)
    x = data.train_set.tensors[0]
    with torch.no_grad():
        z1 = before.backbone.features[1][0](x)
        z2 = before.backbone.features[2][0](before.backbone.features[1](x))
    expected = {
        "backbone.features.1.1": (z1.mean().item(), z1.std().item()),
        "backbone.features.2.1": (z2.mean().item(), z2.std().item()),
    }
    assert monitor.stats.keys() == expected.keys()
    for name, (mean, std) in expected.items():
        assert monitor.stats[name] == pytest.approx((mean, std), rel=1e-4, abs=1e-6)
    events = read_events(trainer.log_dir)
    assert events.Scalars("act_stats/backbone.features.1.1/std")[0].value == pytest.approx(
        expected["backbone.features.1.1"][1], rel=1e-4
    )


def test_only_every_nth_step_is_measured_and_hooks_do_not_outlive_it(tmp_path) -> None:
    model = tiny_model()
    monitor = ActivationStatsMonitor(every_n_steps=2)
    trainer = tiny_trainer(tmp_path, [monitor], limit_train_batches=4)
    trainer.fit(model, datamodule=tiny_data(num_train=64, batch_size=16))
    events = read_events(trainer.log_dir)
    assert [e.step for e in events.Scalars("act_stats/backbone.features.2.1/mean")] == [0, 2]
    assert all(not m._forward_pre_hooks for m in model.modules())
    assert monitor._pending == {}


def test_bad_frequency_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match=r"every_n_steps must be >= 1, got 0"):
        ActivationStatsMonitor(every_n_steps=0)


def test_an_activation_module_called_twice_is_measured_per_call() -> None:
    class Reused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.act(x) * 4.0)

    trainer = SimpleNamespace(global_step=0, loggers=[])
    model, monitor = Reused(), ActivationStatsMonitor(every_n_steps=1)
    x = torch.tensor([[-2.0, 0.0, 4.0]])
    monitor.on_train_batch_start(trainer, model, x, 0)
    model(x)
    monitor.on_train_batch_end(trainer, model, None, x, 0)
    second = torch.tanh(x) * 4.0
    assert monitor.stats == {
        "act": pytest.approx((x.mean().item(), x.std().item())),
        "act#1": pytest.approx((second.mean().item(), second.std().item())),
    }
