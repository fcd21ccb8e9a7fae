"""The task's run length and the schedules fitted to it (ClassificationTask.run_length, on_train_start)."""

from __future__ import annotations

import functools
import math
import warnings

import lightning as L
import pytest
import torch

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.errors import ConfigError
from lit_dl.models import MLPClassifier
from lit_dl.optim import RunLengthOneCycleLR, WarmupCosineLR

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def _model(**kwargs) -> MLPClassifier:
    options = {"num_classes": 3, "in_features": 8, "hidden_sizes": [8], "norm": "none"}
    return MLPClassifier(**{**options, **kwargs})


def _data(num_train: int = 100, batch_size: int = 16) -> SyntheticClassificationDataModule:
    return SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=num_train, num_val=8, num_test=8, batch_size=batch_size
    )


def _trainer(tmp_path, callbacks=(), **kwargs) -> L.Trainer:
    options = {
        "default_root_dir": tmp_path,
        "accelerator": "cpu",
        "devices": 1,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0,
        "callbacks": list(callbacks),
    }
    return L.Trainer(**{**options, **kwargs})


class _Record(L.Callback):
    """What the run looks like when the optimizers are configured and when training starts."""

    def __init__(self, stop: bool = True) -> None:
        self.stop = stop
        self.seen: dict = {}

    def on_fit_start(self, trainer, pl_module):
        self.seen["optimizers_at_fit_start"] = len(trainer.optimizers)
        self.seen["loader_at_fit_start"] = trainer.train_dataloader

    def on_train_start(self, trainer, pl_module):
        self.seen["steps"] = pl_module.run_length("step")
        self.seen["epochs"] = pl_module.run_length("epoch")
        self.seen["estimated"] = trainer.estimated_stepping_batches  # harmless once the loader is set up
        trainer.should_stop = self.stop


@pytest.mark.parametrize(
    ("trainer_kwargs", "steps", "epochs"),
    [
        ({"max_epochs": 3}, 18, 3),  # 100 samples / batch 16, last partial batch dropped: 6 per epoch
        ({"max_epochs": 3, "accumulate_grad_batches": 4}, 6, 3),  # ceil(6 / 4) = 2 steps per epoch
        ({"max_epochs": 3, "limit_train_batches": 3}, 9, 3),
        ({"max_epochs": 3, "limit_train_batches": 0.34}, 6, 3),  # int(6 * 0.34) = 2
        ({"max_epochs": 10, "max_steps": 10}, 10, 2),
        ({"max_epochs": -1, "max_steps": -1}, math.inf, math.inf),
    ],
    ids=["epochs", "accumulate", "limit-int", "limit-float", "max_steps", "endless"],
)
def test_run_length_is_lightnings_stepping_count_without_loading_data_early(
    tmp_path, trainer_kwargs, steps, epochs
):
    record = _Record()
    scheduler = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1)
    _trainer(tmp_path, [record], **trainer_kwargs).fit(_model(lr_scheduler=scheduler), datamodule=_data())
    assert (record.seen["steps"], record.seen["epochs"]) == (steps, epochs)
    assert record.seen["steps"] == record.seen["estimated"]
    # configure_optimizers ran, yet the fit loop's train loader was not set up before the checkpoint
    # restore (Lightning #20550: an early set-up skips restoring the loader's mid-epoch state).
    assert record.seen["optimizers_at_fit_start"] == 1
    assert record.seen["loader_at_fit_start"] is None


def test_run_length_refuses_to_guess_before_the_data_are_set_up():
    model = _model()
    model.trainer = _trainer(None, max_epochs=1)
    with pytest.raises(RuntimeError, match=r"call it from on_train_start on"):
        model.run_length()


@pytest.mark.parametrize("max_epochs", [2, 5])
def test_cosine_without_total_steps_spans_max_epochs(tmp_path, max_epochs):
    model = _model(lr_scheduler=functools.partial(WarmupCosineLR, warmup_steps=0), scheduler_interval="epoch")
    trainer = _trainer(tmp_path, max_epochs=max_epochs, limit_train_batches=1)
    trainer.fit(model, datamodule=_data())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == max_epochs
    assert scheduler.get_last_lr()[0] == pytest.approx(0.0, abs=1e-12)  # annealed to min_lr at the end


def test_one_cycle_spans_the_optimizer_steps_with_accumulation(tmp_path):
    model = _model(
        lr_scheduler=functools.partial(RunLengthOneCycleLR, pct_start=0.25), scheduler_interval="step"
    )
    trainer = _trainer(tmp_path, max_epochs=2, accumulate_grad_batches=2)
    trainer.fit(model, datamodule=_data())
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 6 and scheduler.last_epoch == 6  # 2 epochs x ceil(6 / 2)


def test_torch_one_cycle_shorter_than_the_run_fails_before_the_first_step(tmp_path):
    short = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01, total_steps=10)
    model = _model(lr_scheduler=short, scheduler_interval="step")
    before = model.backbone.head.weight.clone()
    with pytest.raises(
        ConfigError, match=r"OneCycleLR total_steps=10 is shorter than the run \(12 optimizer steps\)"
    ):
        _trainer(tmp_path, max_epochs=2).fit(model, datamodule=_data())
    assert torch.equal(model.backbone.head.weight, before)


def test_lr_scaling_with_torch_one_cycle_fails_at_construction():
    cycle = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.01, total_steps=10)
    with pytest.raises(ConfigError, match=r"lr_scaling='sqrt' cannot reach the LR of OneCycleLR"):
        _model(lr_scheduler=cycle, lr_scaling="sqrt")
    _model(lr_scheduler=RunLengthOneCycleLR, lr_scaling="sqrt")  # its peak is the (scaled) optimizer LR


def test_cosine_annealing_shorter_than_the_run_warns(tmp_path):
    cosine = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=1)
    trainer = _trainer(tmp_path, [_Record()], max_epochs=3)
    with pytest.warns(UserWarning, match=r"CosineAnnealingLR T_max=1 is shorter than the run \(3 epochs\)"):
        trainer.fit(_model(lr_scheduler=cosine), datamodule=_data())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        exact = functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=3)
        _trainer(tmp_path, [_Record()], max_epochs=3).fit(_model(lr_scheduler=exact), datamodule=_data())


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            functools.partial(WarmupCosineLR, total_steps=5),
            "WarmupCosineLR total_steps=5 is shorter than the run (10 epochs): the LR stays at its final value "
            "for the last 5 epochs; leave total_steps unset (null) to follow the run, or give it the run's length",
        ),
        (
            functools.partial(RunLengthOneCycleLR, total_steps=4),
            "RunLengthOneCycleLR total_steps=4 is shorter than the run (10 epochs): the LR stays at its final value for "
            "the last 6 epochs; leave total_steps unset (null) to follow the run, or give it the run's length",
        ),
        (
            functools.partial(torch.optim.lr_scheduler.PolynomialLR, total_iters=8),
            "PolynomialLR total_iters=8 is shorter than the run (10 epochs): the LR stays at its final value for "
            "the last 2 epochs; give total_iters the run's length",
        ),
    ],
    ids=["warmup_cosine", "one_cycle", "polynomial"],
)
def test_a_fixed_schedule_shorter_than_the_run_warns_once_naming_both_lengths(tmp_path, schedule, message):
    trainer = _trainer(tmp_path, max_epochs=10, limit_train_batches=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_model(lr_scheduler=schedule), datamodule=_data())
    assert [str(w.message) for w in caught if "shorter than the run" in str(w.message)] == [message]


def test_a_schedule_as_long_as_the_run_or_following_it_does_not_warn(tmp_path):
    for schedule in (functools.partial(WarmupCosineLR, total_steps=10), WarmupCosineLR):
        trainer = _trainer(tmp_path, max_epochs=10, limit_train_batches=1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(_model(lr_scheduler=schedule), datamodule=_data())
        assert not [w for w in caught if "shorter than the run" in str(w.message)]
