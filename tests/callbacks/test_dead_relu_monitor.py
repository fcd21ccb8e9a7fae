from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from cb_helpers import LIGHTNING_PYTREE_WARNING, read_events, tiny_data, tiny_model, tiny_trainer
from torch import nn

from lit_dl.callbacks import DeadReLUMonitor
from lit_dl.errors import ConfigError

pytestmark = LIGHTNING_PYTREE_WARNING

RELUS = ["backbone.features.1.1", "backbone.features.2.1"]


def test_dying_network_reports_all_units_dead_and_warns(tmp_path) -> None:
    model = tiny_model(hidden_sizes=[8, 8])
    with torch.no_grad():
        for block in (model.backbone.features[1], model.backbone.features[2]):
            block[0].bias.fill_(-100.0)  # every pre-activation far below zero: nothing fires
    monitor = DeadReLUMonitor(threshold=0.9)
    trainer = tiny_trainer(tmp_path, [monitor])
    with pytest.warns(UserWarning, match=r"DeadReLUMonitor: more than 90% .* backbone.features.1.1: 100%"):
        trainer.fit(model, datamodule=tiny_data())
    assert monitor.dead_fractions == {name: 1.0 for name in RELUS}
    events = read_events(trainer.log_dir)
    for name in RELUS:
        assert [e.value for e in events.Scalars(f"dead_relu/{name}")] == [1.0]


def test_dead_fraction_matches_a_direct_count_and_hooks_are_removed(tmp_path) -> None:
    model = tiny_model(hidden_sizes=[32, 32])
    data = tiny_data()
    monitor = DeadReLUMonitor(threshold=1.0)
    trainer = tiny_trainer(tmp_path, [monitor], limit_val_batches=None)
    trainer.fit(model, datamodule=data)
    x = data.val_set.tensors[0]
    model.eval()
    with torch.no_grad():
        h1 = model.backbone.features[1](x)
        h2 = model.backbone.features[2](h1)
    expected = {RELUS[0]: (h1 > 0).any(0), RELUS[1]: (h2 > 0).any(0)}
    for name, fired in expected.items():
        assert monitor.dead_fractions[name] == pytest.approx(1.0 - fired.float().mean().item())
    assert all(not m._forward_hooks for m in model.modules())


def test_conv_units_are_channels(tmp_path) -> None:
    monitor = DeadReLUMonitor()
    relu = nn.ReLU()
    monitor._handles.append(relu.register_forward_hook(monitor._hook("relu")))
    x = torch.full((2, 3, 4, 4), -1.0)
    x[1, 0, 2, 3] = 1.0  # channel 0 fires once, channels 1 and 2 never
    relu(x)
    assert monitor._fired["relu"].tolist() == [True, False, False]
    monitor._remove_hooks()
    assert not relu._forward_hooks


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, r"threshold must be in \[0, 1\], got 1.5"),
        ({"every_n_epochs": 0}, r"every_n_epochs must be >= 1, got 0"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DeadReLUMonitor(**kwargs)


def _fake_trainer() -> SimpleNamespace:
    """What the monitor reads from a Trainer, for driving its hooks without a fit."""
    return SimpleNamespace(
        sanity_checking=False,
        current_epoch=0,
        global_step=0,
        loggers=[],
        strategy=SimpleNamespace(reduce=lambda tensor, reduce_op: tensor),
    )


def _measure(monitor: DeadReLUMonitor, model: nn.Module, *inputs: torch.Tensor) -> dict[str, float]:
    trainer = _fake_trainer()
    monitor.on_validation_epoch_start(trainer, model)
    for i, x in enumerate(inputs):
        monitor.on_validation_batch_start(trainer, model, x, i)
        model(x)
    monitor.on_validation_epoch_end(trainer, model)
    return monitor.dead_fractions


def test_units_of_a_linear_on_sequences_are_features_not_positions() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(3, 4))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, -100.0]))  # feature 2 never fires
    x = torch.zeros(2, 5, 4)  # (B, T, D): 5 positions, 3 features
    x[0, 0, 0] = 1.0  # feature 0 fires at one position
    x[1, 4, 1] = 1.0  # feature 1 fires at another
    assert _measure(DeadReLUMonitor(threshold=1.0), model, x) == {"1": pytest.approx(1 / 3)}


def test_text_cnn_with_two_conv_widths_reports_each_conv() -> None:
    from lit_dl.nn import TextCNN

    torch.manual_seed(0)
    model = TextCNN(vocab_size=8, num_classes=2, embed_dim=4, conv_channels=[32, 64], hidden_size=8)
    ids = torch.randint(1, 8, (3, 6))
    fractions = _measure(DeadReLUMonitor(threshold=1.0), model, ids)
    assert fractions.keys() == {"convs.0.1", "convs.1.1", "head.1"}
    with torch.no_grad():
        h1 = model.convs[0](model.tokens(ids).transpose(1, 2))  # (B, 32, T)
    assert fractions["convs.0.1"] == pytest.approx(1.0 - (h1 > 0).any(2).any(0).float().mean().item())


def test_a_relu_module_called_twice_is_measured_per_call() -> None:
    class Reused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(torch.cat([self.act(x), -x[:, :1]], dim=1))  # widths 2, then 3

    fractions = _measure(DeadReLUMonitor(threshold=1.0), Reused(), torch.tensor([[1.0, -1.0]]))
    assert fractions == {"act": 0.5, "act#1": pytest.approx(2 / 3)}
