from __future__ import annotations

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
