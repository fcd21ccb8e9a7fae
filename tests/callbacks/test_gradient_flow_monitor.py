from __future__ import annotations

import sys

import lightning as L
import numpy as np
import pytest
import torch
from cb_helpers import LIGHTNING_PYTREE_WARNING, read_events, tiny_data, tiny_model, tiny_trainer

from lit_dl.callbacks import GradientFlowMonitor
from lit_dl.callbacks import _logging as cb_logging
from lit_dl.errors import ConfigError

pytestmark = LIGHTNING_PYTREE_WARNING


def test_deep_sigmoid_mlp_without_bn_flags_vanishing_gradients_in_early_layers(tmp_path) -> None:
    torch.manual_seed(0)
    model = tiny_model(hidden_sizes=[32] * 10, activation="sigmoid", norm="none")
    monitor = GradientFlowMonitor(every_n_steps=1, image_every_n_steps=None)
    with pytest.warns(
        UserWarning, match=r"GradientFlowMonitor: vanishing gradients at step 0 in backbone.features.1.0"
    ):
        tiny_trainer(tmp_path, [monitor], limit_train_batches=1).fit(model, datamodule=tiny_data())
    layers = list(monitor.norms)
    assert layers == [f"backbone.features.{i}.0" for i in range(1, 11)] + ["backbone.head"]
    assert layers[:3] == monitor.vanishing[:3]  # the first layers, nearest the input
    assert "backbone.head" not in monitor.vanishing
    assert monitor.exploding == []


class GradientRecorder(L.Callback):
    """Reads the weight gradients at the same hook as the monitor."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        backbone = pl_module.backbone
        layers = {
            "backbone.features.1.0": backbone.features[1][0],
            "backbone.features.2.0": backbone.features[2][0],
            "backbone.head": backbone.head,
        }
        self.norms = {name: layer.weight.grad.norm().item() for name, layer in layers.items()}


def test_healthy_relu_bn_net_flags_nothing_and_norms_are_exact(tmp_path) -> None:
    model = tiny_model(hidden_sizes=[16, 16], norm="before")
    monitor = GradientFlowMonitor(every_n_steps=1, image_every_n_steps=None)
    recorder = GradientRecorder()
    trainer = tiny_trainer(tmp_path, [monitor, recorder], limit_train_batches=1)
    trainer.fit(model, datamodule=tiny_data())
    expected = recorder.norms
    assert monitor.norms == pytest.approx(expected, rel=1e-6)
    assert (monitor.vanishing, monitor.exploding) == ([], [])
    events = read_events(trainer.log_dir)
    assert events.Scalars("grad_norm/backbone.head")[0].value == pytest.approx(
        expected["backbone.head"], rel=1e-6
    )
    assert [e.value for e in events.Scalars("grad_flow/vanishing")] == [0.0]


def test_exploding_threshold_flags_and_the_chart_is_logged_every_image_step(tmp_path) -> None:
    monitor = GradientFlowMonitor(every_n_steps=1, exploding_threshold=1e-12, image_every_n_steps=2)
    trainer = tiny_trainer(tmp_path, [monitor], limit_train_batches=3)
    with pytest.warns(UserWarning, match=r"exploding gradients at step 0"):
        trainer.fit(tiny_model(), datamodule=tiny_data())
    assert monitor.exploding == list(monitor.norms)
    events = read_events(trainer.log_dir)
    assert [e.step for e in events.Scalars("grad_flow/exploding")] == [0, 1, 2]
    assert [e.value for e in events.Scalars("grad_flow/exploding")] == [3.0, 3.0, 3.0]
    assert [e.step for e in events.Images("grad_flow/chart")] == [0, 2]


def test_render_chart_is_an_rgb_image() -> None:
    monitor = GradientFlowMonitor()
    monitor.norms = {"a": 1e-6, "b": 0.5, "c": float("inf")}
    monitor.vanishing, monitor.exploding = ["a"], ["c"]
    image = monitor.render_chart()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] == 320  # 4 inches at 80 dpi


def test_without_matplotlib_the_chart_is_skipped_with_one_warning_and_scalars_still_logged(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    monkeypatch.setattr(cb_logging, "_warned", set())
    monitor = GradientFlowMonitor(every_n_steps=1, image_every_n_steps=1)
    trainer = tiny_trainer(tmp_path, [monitor], limit_train_batches=3)
    with pytest.warns(UserWarning, match=r"needs matplotlib: pip install 'lit-dl\[plot\]'") as record:
        trainer.fit(tiny_model(), datamodule=tiny_data())
    assert sum("matplotlib" in str(w.message) for w in record) == 1
    events = read_events(trainer.log_dir)
    assert len(events.Scalars("grad_norm/backbone.head")) == 3
    assert events.Tags()["images"] == []


def test_no_logger_still_measures(tmp_path) -> None:
    monitor = GradientFlowMonitor(every_n_steps=1, image_every_n_steps=1)
    tiny_trainer(tmp_path, [monitor], logger=False).fit(tiny_model(), datamodule=tiny_data())
    assert set(monitor.norms) == {"backbone.features.1.0", "backbone.features.2.0", "backbone.head"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"every_n_steps": 0}, r"every_n_steps must be >= 1, got 0"),
        ({"vanishing_ratio": 0.0}, r"vanishing_ratio must be in \(0, 1\), got 0.0"),
        ({"vanishing_ratio": 1.0}, r"vanishing_ratio must be in \(0, 1\), got 1.0"),
        ({"exploding_threshold": 0.0}, r"exploding_threshold must be > 0, got 0.0"),
        (
            {"image_every_n_steps": 75},
            r"image_every_n_steps must be None or a positive multiple of every_n_steps=50, got 75",
        ),
        ({"image_every_n_steps": 0}, r"positive multiple of every_n_steps=50, got 0"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GradientFlowMonitor(**kwargs)
