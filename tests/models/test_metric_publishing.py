"""The validation inside fit publishes its metrics itself (no self.log): the same names, values,
logger steps and progress-bar entries as Lightning's logging of them, which validate and test keep."""

from __future__ import annotations

import lightning as L
import torch

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier
from lit_dl.models.task_logging import TaskLogging
from tests.models.test_train_log_window import RecordingLogger

NAMES = {"val/loss", "val/acc", "val/f1"}


def fit_and_validate(tmp_path):
    L.seed_everything(0)
    model = MLPClassifier(num_classes=3, in_features=8, hidden_sizes=[8])
    data = SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=64, num_val=40, batch_size=16
    )
    logger = RecordingLogger()
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=2, logger=logger, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, log_every_n_steps=1,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    fitted = {name: trainer.callback_metrics[name].clone() for name in NAMES}
    fit_calls = list(logger.calls)  # validate below logs too
    bar = {name: trainer.progress_bar_metrics[name] for name in NAMES}
    (validated,) = trainer.validate(model, datamodule=data, verbose=False)
    return trainer, fit_calls, fitted, bar, validated


def test_fit_validation_reaches_the_loggers_once_per_epoch_at_lightnings_step_with_the_epoch(tmp_path):
    _, fit_calls, fitted, _, _ = fit_and_validate(tmp_path)
    calls = [(step, metrics) for step, metrics in fit_calls if "val/acc" in metrics]
    # 4 training steps per epoch, none from the sanity check; Lightning's step for an epoch-end
    # validation counts the epoch's steps but its last (3, 7), for self.log and the published alike
    assert [(step, set(metrics), metrics["epoch"]) for step, metrics in calls] == [
        (3, NAMES | {"epoch"}, 0),
        (7, NAMES | {"epoch"}, 1),
    ]
    for name in NAMES:
        assert calls[-1][1][name] == fitted[name].item()


def test_fit_validation_values_equal_what_validate_logs_through_lightning(tmp_path):
    # the same weights and data: fit's last validation (published) and validate (self.log of the
    # metric objects) give the same numbers, in callback_metrics and on the progress bar
    trainer, _, fitted, bar, validated = fit_and_validate(tmp_path)
    assert set(validated) == NAMES
    for name in NAMES:
        assert torch.equal(fitted[name], trainer.callback_metrics[name])
        assert bar[name] == validated[name] == fitted[name].item()


def test_barebones_computes_and_publishes_no_metric(tmp_path):
    # Lightning's barebones turns logging off: the task then sums no training window and computes no
    # validation metric (self.log would only have warned)
    L.seed_everything(0)
    model = MLPClassifier(num_classes=3, in_features=8, hidden_sizes=[8])
    data = SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=64, num_val=40, batch_size=16
    )
    trainer = L.Trainer(default_root_dir=tmp_path, max_epochs=2, barebones=True)
    trainer.fit(model, datamodule=data)
    assert trainer.callback_metrics == {} and trainer.progress_bar_metrics == {}
    assert model.task_logging.window.sums == {} and model.task_logging.window.count == 0
    assert model.eval_metrics["val"]["acc"]._update_count == 3  # the last epoch's batches, never reset
    assert model.eval_metrics["val"]["acc"]._computed is None


def test_fit_validation_values_are_in_logged_metrics_without_a_logger(tmp_path):
    L.seed_everything(0)
    model = MLPClassifier(num_classes=3, in_features=8, hidden_sizes=[8])
    data = SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=64, num_val=40, batch_size=16
    )
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    for name in NAMES:
        assert torch.equal(trainer.logged_metrics[name], trainer.callback_metrics[name])


def test_fit_resets_the_validation_metrics_once_per_epoch(tmp_path, monkeypatch):
    # fit's validation resets its metrics right after computing them; the next epoch start does not
    # reset them again (validate and test, which leave inference tensors, still reset at the start)
    resets: list[str] = []
    reset = TaskLogging.reset_eval
    monkeypatch.setattr(
        TaskLogging, "reset_eval", lambda self, stage: (resets.append(stage), reset(self, stage))
    )
    fit_and_validate(tmp_path)
    # the sanity check: at its start (nothing has reset them yet) and after its compute; each of the 2
    # epochs: after its compute; validate: not at its start (fit's last reset left them empty),
    # Lightning resets the objects it logged at validate's end
    assert resets == ["val"] * 4
