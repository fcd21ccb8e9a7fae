"""The training-loss window: written every log_every_n_steps optimizer steps and at each epoch end,
averaging every micro-batch, with no Lightning warning about short epochs."""

from __future__ import annotations

import warnings

import lightning as L
import torch
from lightning.pytorch.loggers import Logger

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier


class RecordingLogger(Logger):
    """Keeps every ``log_metrics`` call: (step, {name: value})."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, dict]] = []

    @property
    def name(self) -> str:
        return "recording"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.calls.append((step, dict(metrics)))

    def series(self, name: str) -> list[tuple[int, torch.Tensor]]:
        """The logged values of ``name`` as float32 tensors (loggers receive Python floats, as from
        Lightning's own logger connector; a float32 mean converts to float and back exactly)."""
        values = [(step, m[name]) for step, m in self.calls if name in m]
        assert all(type(v) is float for _, v in values)
        return [(step, torch.tensor(v, dtype=torch.float32)) for step, v in values]


class LossRecorder(MLPClassifier):
    """Records the data loss of every training micro-batch, in order."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.losses: list[torch.Tensor] = []

    def compute_loss(self, logits, target):
        loss = super().compute_loss(logits, target)
        if self.training:
            self.losses.append(loss.detach().clone())
        return loss


def fit(tmp_path, *, num_train: int, batch_size: int, epochs: int, l1: float = 0.0, **trainer_kwargs):
    L.seed_everything(0)
    model = LossRecorder(num_classes=3, in_features=8, hidden_sizes=[8], l1=l1)
    data = SyntheticClassificationDataModule(
        num_classes=3, num_features=8, num_train=num_train, batch_size=batch_size
    )
    logger = RecordingLogger()
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=epochs,
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
        **trainer_kwargs,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(model, datamodule=data)
    return model, logger, [str(w.message) for w in caught]


def window_mean(losses: list[torch.Tensor]) -> torch.Tensor:
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total / len(losses)


def test_an_epoch_shorter_than_the_interval_is_logged_at_its_end_without_a_warning(tmp_path):
    # 3 batches per epoch, log_every_n_steps 10 (the digits recipe on 2 devices: 9 and 10)
    model, logger, messages = fit(tmp_path, num_train=48, batch_size=16, epochs=2, log_every_n_steps=10)
    logged = logger.series("train/loss")
    assert [step for step, _ in logged] == [2, 5]
    assert torch.equal(logged[0][1], window_mean(model.losses[0:3]))
    assert torch.equal(logged[1][1], window_mean(model.losses[3:6]))
    assert not [m for m in messages if "logging interval" in m]


def test_a_window_averages_every_micro_batch_under_accumulation(tmp_path):
    # 5 batches per epoch, 2 per optimizer step: steps close after batches 1, 3 and 4 (the epoch's
    # last, a short accumulation); log_every_n_steps 2 writes after step 2 and at the epoch end
    model, logger, _ = fit(
        tmp_path, num_train=80, batch_size=16, epochs=1, log_every_n_steps=2, accumulate_grad_batches=2
    )
    logged = logger.series("train/loss")
    assert [step for step, _ in logged] == [1, 2]
    assert torch.equal(logged[0][1], window_mean(model.losses[0:4]))
    assert torch.equal(logged[1][1], window_mean(model.losses[4:5]))


def test_a_run_ending_at_max_steps_logs_its_last_window(tmp_path):
    model, logger, _ = fit(tmp_path, num_train=160, batch_size=16, epochs=5, max_steps=7, log_every_n_steps=5)
    logged = logger.series("train/loss")
    assert [step for step, _ in logged] == [4, 6]
    assert torch.equal(logged[1][1], window_mean(model.losses[5:7]))


def test_log_every_n_steps_zero_logs_no_window(tmp_path):
    _, logger, _ = fit(tmp_path, num_train=48, batch_size=16, epochs=1, log_every_n_steps=0)
    assert logger.series("train/loss") == []


class EpochEndReader(L.Callback):
    """Reads ``train/loss`` from ``callback_metrics`` at each epoch end (a scheduler or checkpoint would)."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.seen.append(trainer.callback_metrics["train/loss"])


def test_windows_still_on_their_way_to_the_host_are_written_late_and_the_epochs_last_at_once(
    tmp_path, monkeypatch
):
    # On a GPU a window's values reach the host a few steps after it closes (HostCopy); here no copy
    # ever "arrives" by itself, so mid-epoch windows wait for the epoch's last one, which is waited for
    # at once: every window reaches the loggers with its own step and values, and the epoch-end hooks
    # see the epoch's last window.
    from lit_dl.data.host_reads import HostCopy

    monkeypatch.setattr(HostCopy, "ready", lambda self: False)
    reader = EpochEndReader()
    model, logger, _ = fit(
        tmp_path, num_train=112, batch_size=16, epochs=2, log_every_n_steps=3, callbacks=[reader]
    )
    logged = logger.series("train/loss")
    assert [step for step, _ in logged] == [2, 5, 6, 8, 11, 13]  # 7 batches per epoch
    assert torch.equal(logged[0][1], window_mean(model.losses[0:3]))
    assert torch.equal(logged[2][1], window_mean(model.losses[6:7]))
    assert torch.equal(logged[3][1], window_mean(model.losses[7:9]))
    assert torch.equal(logged[5][1], window_mean(model.losses[12:14]))
    assert [float(v) for v in reader.seen] == [float(logged[2][1]), float(logged[5][1])]


def test_the_last_window_is_in_callback_metrics_and_its_loss_on_the_progress_bar(tmp_path):
    # as self.log(on_step=True, logger=False) would leave them: every term for callbacks, the data loss
    # (not the L1 term) for the bar, as a number
    model, logger, _ = fit(tmp_path, num_train=48, batch_size=16, epochs=2, log_every_n_steps=2, l1=1e-3)
    ((step, last),) = logger.calls[-1:]
    assert step == 5 and set(last) == {"train/loss", "train/l1"}
    trainer = model.trainer
    for name in ("train/loss", "train/l1"):
        assert torch.equal(trainer.callback_metrics[name], torch.tensor(last[name], dtype=torch.float32))
        assert trainer.callback_metrics[name].device.type == "cpu"
    assert trainer.progress_bar_metrics["train/loss"] == last["train/loss"]
    assert "train/l1" not in trainer.progress_bar_metrics
