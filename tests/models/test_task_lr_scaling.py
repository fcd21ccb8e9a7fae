"""ClassificationTask's lr_scaling: real fits, the LR monitor's log, hparams, warmup checks, errors."""

import functools
import math

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.errors import ConfigError
from lit_dl.models import ClassificationTask, MLPClassifier
from lit_dl.optim import WarmupCosineLR, WarmupStepLR

# lightning 2.6's _pytree on torch 2.13 warns on every fit; pyproject turns FutureWarning into errors.
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

LR = 0.01
FACTOR = {"none": 1.0, "linear": 8.0, "sqrt": math.sqrt(8.0)}
SGD = functools.partial(torch.optim.SGD, lr=LR, momentum=0.9)


class _YamlLoader(yaml.SafeLoader):
    """Reads hparams.yaml, skipping the pickled callables (functools.partial) tests pass as optimizers."""


_YamlLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def logged(log_dir, tag: str) -> dict[int, float]:
    """``{step: value}`` of a scalar in the TensorBoard events under ``log_dir``."""
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {e.step: e.value for e in events.Scalars(tag)}


def _model(**kwargs) -> MLPClassifier:
    kwargs.setdefault("optimizer", SGD)
    return MLPClassifier(num_classes=3, in_features=8, hidden_sizes=[8], **kwargs)


def _data(batch_size: int, num_train: int) -> SyntheticClassificationDataModule:
    return SyntheticClassificationDataModule(
        num_features=8, num_train=num_train, num_val=8, num_test=8, batch_size=batch_size
    )


def _trainer(tmp_path, callbacks=(), **kwargs) -> L.Trainer:
    kwargs.setdefault("max_steps", 2)
    return L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
        limit_val_batches=0,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        callbacks=[LearningRateMonitor(logging_interval="step"), *callbacks],
        **kwargs,
    )


@pytest.mark.parametrize("mode", sorted(FACTOR))
def test_accumulation_scales_every_group_and_the_logged_lr(tmp_path, mode, caplog):
    # Per-device batch 256, 1 device, accumulate_grad_batches 2: 512 samples per step, 8x base 64.
    model = _model(lr_scaling=mode, base_batch_size=64)
    trainer = _trainer(tmp_path, accumulate_grad_batches=2, max_steps=1)
    with caplog.at_level("INFO"):
        trainer.fit(model, datamodule=_data(256, num_train=512))
    expected = LR * FACTOR[mode]
    for group in trainer.optimizers[0].param_groups:
        assert group["lr"] == pytest.approx(expected, rel=1e-12)
    for name in ("decay", "no_decay"):
        assert logged(trainer.log_dir, f"lr-SGD/{name}")[0] == pytest.approx(expected, rel=1e-6)
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("lr scaled")]
    hparams = yaml.load((tmp_path / "lightning_logs/version_0/hparams.yaml").read_text(), Loader=_YamlLoader)
    if mode == "none":
        assert messages == []
        assert "lr_scaled/factor" not in hparams
    else:
        assert messages == [
            f"lr scaled {mode} x{round(FACTOR[mode], 4)!r} (global batch 512 / base 64): "
            f"{LR:g} -> {expected:g}"
        ]
        assert hparams["lr_scaled/global_batch_size"] == 512
        assert hparams["lr_scaled/factor"] == pytest.approx(FACTOR[mode])
        assert hparams["lr_scaled/lr/decay"] == pytest.approx(expected)
        assert hparams["lr_scaled/lr/no_decay"] == pytest.approx(expected)


@pytest.mark.parametrize("mode", sorted(FACTOR))
def test_two_simulated_ddp_devices_scale_the_optimizer_groups(mode):
    # A Trainer for 2 CPU processes under DDP launches nothing until fit(), yet already holds the real
    # num_devices / num_nodes / accumulate_grad_batches that configure_optimizers reads; the datamodule
    # is attached the way fit() attaches it (trainer.datamodule). Batch 256 x 2 devices = 512 = 8 x 64.
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_checkpointing=False
    )
    assert (trainer.num_devices, trainer.num_nodes, trainer.accumulate_grad_batches) == (2, 1, 1)
    model = _model(lr_scaling=mode, base_batch_size=64)
    model.trainer = trainer
    trainer.datamodule = _data(256, num_train=512)
    assert model.global_batch_size() == 512
    optimizer = model.configure_optimizers()
    assert [g["name"] for g in optimizer.param_groups] == ["decay", "no_decay"]
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(LR * FACTOR[mode], rel=1e-12)


def test_warmup_starts_from_the_scaled_lr(tmp_path):
    scheduler = functools.partial(WarmupCosineLR, warmup_steps=2, warmup_start_factor=0.25)
    model = _model(lr_scaling="linear", base_batch_size=16, lr_scheduler=scheduler, scheduler_interval="step")
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=_data(64, num_train=256))
    lrs = logged(trainer.log_dir, "lr-SGD/decay")
    assert [lrs[s] for s in range(3)] == pytest.approx([4 * LR * 0.25, 4 * LR * 0.625, 4 * LR], rel=1e-6)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.total_steps == 3  # filled in from trainer.estimated_stepping_batches
    assert scheduler.base_lrs == pytest.approx([4 * LR, 4 * LR])  # built after the scaling


class _StopAtEpochEnd(L.Callback):
    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            trainer.should_stop = True


@pytest.mark.parametrize(
    ("scheduler", "interval"),
    [
        (functools.partial(WarmupCosineLR, warmup_steps=5, min_lr=1e-4), "step"),
        (functools.partial(WarmupStepLR, warmup_steps=1, step_size=1, gamma=0.5), "epoch"),
    ],
    ids=["cosine-per-step", "step-per-epoch"],
)
def test_resumed_run_repeats_the_uninterrupted_lr_sequence(tmp_path, scheduler, interval):
    def run(root, ckpt_path=None, stop_epoch=None):
        callbacks = [ModelCheckpoint(dirpath=root / "ckpt", save_top_k=-1, every_n_epochs=1)]
        if stop_epoch is not None:
            callbacks.append(_StopAtEpochEnd(stop_epoch))
        trainer = _trainer(root, callbacks, max_steps=-1, max_epochs=4)
        model = _model(
            lr_scaling="sqrt", base_batch_size=8, lr_scheduler=scheduler, scheduler_interval=interval
        )
        # weights_only=False: the checkpoint's hyperparameters hold the functools.partial factories.
        trainer.fit(model, datamodule=_data(32, num_train=128), ckpt_path=ckpt_path, weights_only=False)
        return trainer, logged(trainer.log_dir, "lr-SGD/decay")

    _, full = run(tmp_path / "full")
    _, head = run(tmp_path / "first", stop_epoch=1)
    ckpt = tmp_path / "first/ckpt/epoch=1-step=8.ckpt"
    assert ckpt.is_file()
    _, tail = run(tmp_path / "second", ckpt_path=ckpt)
    assert sorted(full) == list(range(16))
    assert sorted(head) == list(range(8)) and sorted(tail) == list(range(8, 16))
    assert [{**head, **tail}[s] for s in range(16)] == pytest.approx([full[s] for s in range(16)], rel=1e-7)
    assert len(set(full.values())) > 3  # the schedule moved


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lr_scaling": "cubic"}, r"lr_scaling must be one of \['linear', 'none', 'sqrt'\], got 'cubic'"),
        (
            {"lr_scaling": "linear", "base_batch_size": -64},
            r"base_batch_size must be an integer >= 1, got -64",
        ),
    ],
    ids=["mode", "negative-base"],
)
def test_bad_scaling_values_fail_in_init(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _model(**kwargs)


@pytest.mark.parametrize(
    ("scheduler", "interval", "message"),
    [
        (
            functools.partial(WarmupCosineLR, warmup_steps=10),
            "step",
            r"warmup_steps=10 is longer than the run: the run has 8 optimizer steps",
        ),
        (
            functools.partial(WarmupStepLR, step_size=1, warmup_steps=3),
            "epoch",
            r"warmup_steps=3 is longer than the run: the run has 2 epochs",
        ),
    ],
    ids=["steps", "epochs"],
)
def test_warmup_longer_than_the_run_fails_before_training(tmp_path, scheduler, interval, message):
    model = _model(lr_scheduler=scheduler, scheduler_interval=interval)
    trainer = _trainer(tmp_path, max_steps=-1, max_epochs=2)
    with pytest.raises(ConfigError, match=message):
        trainer.fit(model, datamodule=_data(32, num_train=128))
    assert trainer.global_step == 0


class _NoBatchSizeData(L.LightningDataModule):
    def train_dataloader(self):
        x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
        sampler = BatchSampler(SequentialSampler(range(16)), batch_size=4, drop_last=True)
        return DataLoader(list(zip(x, y, strict=True)), batch_sampler=sampler)


def test_scaling_without_a_known_batch_size_fails_clearly(tmp_path):
    model = _model(lr_scaling="linear", base_batch_size=4)
    with pytest.raises(
        ConfigError, match=r"lr_scaling='linear' needs the per-device batch size.*_NoBatchSizeData"
    ):
        _trainer(tmp_path).fit(model, datamodule=_NoBatchSizeData())


def test_the_train_loader_batch_size_is_used_without_a_datamodule_attribute(tmp_path):
    class LoaderOnly(L.LightningDataModule):
        def train_dataloader(self):
            x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
            return DataLoader(list(zip(x, y, strict=True)), batch_size=16)

    model = _model(lr_scaling="linear", base_batch_size=4)
    trainer = _trainer(tmp_path, max_steps=1)
    trainer.fit(model, datamodule=LoaderOnly())
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(4 * LR)


def test_task_base_documents_the_new_arguments():
    doc = ClassificationTask.__doc__
    assert "lr_scaling:" in doc and "base_batch_size:" in doc and "Shallue et al., 2019" in doc
