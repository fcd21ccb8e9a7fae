"""Each function of lit_dl._lightning against the installed Lightning: a release that renames or
changes one of the private names it reaches fails here, not silently in a run."""

from __future__ import annotations

import subprocess
import sys

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel
from lightning.pytorch.trainer.connectors.logger_connector import _LoggerConnector

from lit_dl import _lightning


class _Probe(L.Callback):
    """Records what each shim function returns inside a real fit."""

    def __init__(self) -> None:
        self.processed: list[int] = []
        self.connector = None
        self.dropped_loader_rebuilt = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.connector = _lightning.logger_connector(trainer)
        _lightning.drop_train_loader(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.dropped_loader_rebuilt = trainer.train_dataloader is not None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.processed.append(_lightning.batches_processed_this_epoch(trainer))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    probe = _Probe()
    model = BoringModel()
    trainer = L.Trainer(
        default_root_dir=tmp_path_factory.mktemp("shim"),
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[probe],
    )
    trainer.fit(model)
    return trainer, model, probe


def test_checked_against_the_installed_minor_version():
    installed = tuple(int(p) for p in L.__version__.split(".")[:2])
    checked = tuple(int(p) for p in _lightning.CHECKED_AGAINST.split(".")[:2])
    assert installed == checked, (
        f"lightning {L.__version__} is installed, lit_dl._lightning was checked against "
        f"{_lightning.CHECKED_AGAINST}: run this file, mend what fails, update CHECKED_AGAINST and the pin"
    )


def test_attached_trainer_is_the_trainer_or_none(fitted):
    trainer, model, _ = fitted
    assert _lightning.attached_trainer(model) is trainer
    assert _lightning.attached_trainer(BoringModel()) is None
    with pytest.raises(RuntimeError, match="not attached"):
        BoringModel().trainer  # noqa: B018 - the public property raises, which is why the shim exists


def test_logger_connector_has_the_dicts_publishing_uses(fitted):
    trainer, _, probe = fitted
    connector = probe.connector
    assert isinstance(connector, _LoggerConnector)
    value = torch.tensor(1.5)
    connector._callback_metrics["shim/x"] = value
    connector._progress_bar_metrics["shim/x"] = 1.5
    connector._logged_metrics["shim/x"] = value
    assert trainer.callback_metrics["shim/x"] is value
    assert trainer.progress_bar_metrics["shim/x"] == 1.5
    assert trainer.logged_metrics["shim/x"] is value
    assert callable(connector.log_metrics)


def test_batches_processed_counts_finished_batches_per_epoch(fitted):
    _, _, probe = fitted
    assert probe.processed == [1, 2, 3, 1, 2, 3]


def test_drop_train_loader_is_rebuilt_by_the_fit_loop(fitted):
    trainer, _, probe = fitted
    assert probe.dropped_loader_rebuilt
    assert trainer.global_step == 6
    assert hasattr(trainer.fit_loop, "_combined_loader")


class _LoaderWithArgs(torch.utils.data.DataLoader):
    """A DataLoader subclass with an argument of its own, which a rebuild must keep."""

    def __init__(self, dataset, tag: str, **kwargs) -> None:
        super().__init__(dataset, **kwargs)
        self.tag = tag


def test_rebuild_dataloader_keeps_class_and_arguments_with_the_new_sampler():
    from lightning.fabric.utilities.data import _replace_dunder_methods

    dataset = torch.utils.data.TensorDataset(torch.arange(10.0))
    with _replace_dunder_methods(torch.utils.data.DataLoader, "dataset"):  # as Lightning calls a hook
        loader = _LoaderWithArgs(dataset, "mine", batch_size=3)
    sampler = torch.utils.data.SubsetRandomSampler([4, 2])
    rebuilt = _lightning.rebuild_dataloader(loader, sampler)
    assert type(rebuilt) is _LoaderWithArgs and rebuilt.tag == "mine"
    assert rebuilt.batch_size == 3 and rebuilt.sampler is sampler and rebuilt.dataset is dataset


def test_set_logger_version_fixes_the_log_dir(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    for logger in (CSVLogger(tmp_path), TensorBoardLogger(tmp_path)):
        _lightning.set_logger_version(logger, "version_7")
        assert logger.version == "version_7"
        assert logger.log_dir == str(tmp_path / "lightning_logs" / "version_7")


def _hparams_sessions(run_dir) -> tuple[list[str], list[float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = sorted(events.PluginTagToContent("hparams"))
    return tags, [e.value for e in events.Scalars("hp_metric")] if "hp_metric" in events.Tags()[
        "scalars"
    ] else []


def test_disable_default_hp_metric_stops_the_session_without_metrics(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    placeholder = TensorBoardLogger(tmp_path, version="placeholder")
    placeholder.log_hyperparams({"a": 1})
    placeholder.finalize("success")
    assert _hparams_sessions(placeholder.log_dir) == (
        ["_hparams_/experiment", "_hparams_/session_end_info", "_hparams_/session_start_info"],
        [-1.0],
    )
    quiet = TensorBoardLogger(tmp_path, version="quiet")
    _lightning.disable_default_hp_metric(quiet)
    quiet.log_hyperparams({"a": 1})
    assert quiet.hparams == {"a": 1}  # still recorded for hparams.yaml
    quiet.log_hyperparams({"a": 1}, metrics={"hp_metric": 0.5})  # a session with metrics is written
    quiet.finalize("success")
    assert _hparams_sessions(quiet.log_dir) == (
        ["_hparams_/experiment", "_hparams_/session_end_info", "_hparams_/session_start_info"],
        [0.5],
    )


def test_logger_version_is_none_until_the_logger_picks_or_is_given_one(tmp_path):
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    for logger in (CSVLogger(tmp_path), TensorBoardLogger(tmp_path)):
        assert _lightning.logger_version(logger) is None
        assert logger.version == 0  # the public property picks one on first read
        assert _lightning.logger_version(logger) == 0
    for logger in (CSVLogger(tmp_path, version=3), TensorBoardLogger(tmp_path, version="run_a")):
        assert _lightning.logger_version(logger) == logger.version


class _ResumeProbe(L.Callback):
    """Applies the two resume shims as ExactResume does and records what they see."""

    def __init__(self) -> None:
        self.cleared: bool | None = None
        self.epoch_starts: list[int] = []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.cleared = _lightning.open_next_epoch_after_resume_at_epoch_end(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_starts.append(trainer.current_epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.cleared:
            self.cleared = False
            _lightning.forget_skipped_validation(trainer)


def _every_step_fit(root, ckpt_path=None) -> _ResumeProbe:
    from lightning.pytorch.callbacks import ModelCheckpoint

    probe = _ResumeProbe()
    trainer = L.Trainer(
        default_root_dir=root, max_epochs=2, limit_train_batches=3, limit_val_batches=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[probe, ModelCheckpoint(dirpath=root, every_n_train_steps=1, save_top_k=-1, filename="{step}")],
    )  # fmt: skip
    trainer.fit(BoringModel(), ckpt_path=ckpt_path)
    return probe


def test_a_resume_from_an_epochs_last_batch_opens_the_next_epoch_as_an_uninterrupted_run(tmp_path):
    whole = _every_step_fit(tmp_path / "whole")
    assert whole.cleared is False  # not a resume: nothing to mend
    resumed = _every_step_fit(tmp_path / "resumed", ckpt_path=tmp_path / "whole" / "step=3.ckpt")
    # Lightning 2.6.6 alone calls no on_train_epoch_start for epoch 1 and counts it as not started
    assert resumed.epoch_starts == [1]
    after = [
        torch.load(tmp_path / d / "step=4.ckpt", weights_only=True)["loops"] for d in ("whole", "resumed")
    ]
    assert after[0] == after[1]
    assert after[1]["fit_loop"]["epoch_progress"]["current"]["started"] == 2
    assert after[1]["fit_loop"]["epoch_loop.val_loop.batch_progress"]["total"]["completed"] == 0


def test_a_mid_epoch_resume_keeps_the_loops_restart_stage(tmp_path):
    _every_step_fit(tmp_path / "whole")
    resumed = _every_step_fit(tmp_path / "resumed", ckpt_path=tmp_path / "whole" / "step=2.ckpt")
    assert resumed.cleared is False
    assert resumed.epoch_starts == [1]


class _EpochEndPoint(L.Callback):
    """Records, at each train epoch end, whether a ModelCheckpoint takes its epoch's file there."""

    def __init__(self, checkpoint) -> None:
        self.checkpoint = checkpoint
        self.answers: list[bool] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.answers.append(_lightning.saves_at_train_epoch_end(self.checkpoint, trainer))


@pytest.mark.parametrize(
    ("trainer_args", "checkpoint_args", "expected"),
    [
        ({}, {}, True),  # validation once per epoch, at its end
        ({"limit_val_batches": 0}, {}, True),  # no validation
        ({"val_check_interval": 0.5}, {}, False),  # validations inside the epoch
        ({"check_val_every_n_epoch": 2}, {}, False),
        ({"val_check_interval": "00:00:00:01"}, {}, False),  # time-based validation (private to the Trainer)
        ({}, {"save_on_train_epoch_end": False}, False),
        ({"val_check_interval": 0.5}, {"save_on_train_epoch_end": True}, True),
    ],
    ids=["default", "no_validation", "twice_per_epoch", "every_other_epoch", "timed", "told_no", "told_yes"],
)
def test_saves_at_train_epoch_end_is_model_checkpoints_decision(
    tmp_path, trainer_args, checkpoint_args, expected
):
    from lightning.pytorch.callbacks import ModelCheckpoint

    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_top_k=0, **checkpoint_args)
    probe = _EpochEndPoint(checkpoint)
    args = {"limit_val_batches": 1, **trainer_args}
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=2, num_sanity_val_steps=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[checkpoint, probe], **args,
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert probe.answers == [expected]


def test_trainer_callbacks_is_the_list_the_trainer_calls(fitted):
    trainer, _, probe = fitted
    callbacks = _lightning.trainer_callbacks(trainer)
    assert callbacks is trainer.callbacks
    assert probe in callbacks


def test_trainer_attributes_set_outside_the_trainer_class(tmp_path):
    def trainer(**kwargs) -> L.Trainer:
        return L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, **kwargs)

    assert _lightning.log_every_n_steps(trainer(log_every_n_steps=7)) == 7
    assert _lightning.fast_dev_run(trainer()) is False
    assert _lightning.fast_dev_run(trainer(fast_dev_run=1)) is True
    quick = trainer(fast_dev_run=2, enable_model_summary=False)
    assert _lightning.trainer_datamodule(quick) is None
    datamodule = BoringDataModule()
    quick.fit(BoringModel(), datamodule=datamodule)
    assert _lightning.fast_dev_run(quick) == 2
    assert _lightning.trainer_datamodule(quick) is datamodule


def test_launched_processes_are_the_ddp_launchers_children(tmp_path):
    def trainer(**kwargs) -> L.Trainer:
        return L.Trainer(default_root_dir=tmp_path, logger=False, accelerator="cpu", **kwargs)

    assert _lightning.launched_processes(trainer(devices=1)) == []
    ddp = trainer(devices=2, strategy="ddp")
    assert _lightning.launched_processes(ddp) == []  # nothing launched before fit
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    ddp.strategy.launcher.procs.append(child)  # what launch() does for each other local rank
    assert _lightning.launched_processes(ddp) == [child]


def test_process_rank_is_what_rank_zero_only_reads(monkeypatch):
    from lightning.pytorch.utilities import rank_zero_only

    assert _lightning.process_rank() == 0
    monkeypatch.setattr(rank_zero_only, "rank", 3)
    assert _lightning.process_rank() == 3


def test_norms_are_each_tensors_2_norm():
    tensors = [torch.randn(3, 4), torch.randn(5), torch.zeros(2)]
    assert [n.item() for n in _lightning.norms(tensors)] == [
        torch.linalg.vector_norm(t).item() for t in tensors
    ]


def test_exponential_average_is_the_per_tensor_expression_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    averaged = [torch.randn(64, 33, generator=generator), torch.randn(7, generator=generator)]
    current = [torch.randn(64, 33, generator=generator), torch.randn(7, generator=generator)]
    expected = [0.999 * a + (1 - 0.999) * c for a, c in zip(averaged, current, strict=True)]
    _lightning.exponential_average_(averaged, current, 0.999)
    for got, want in zip(averaged, expected, strict=True):
        assert torch.equal(got, want)
