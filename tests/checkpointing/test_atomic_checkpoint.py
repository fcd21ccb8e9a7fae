"""AtomicCheckpoint: a write cut short leaves the previous file intact under its name."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import CSVLogger

from lit_dl.callbacks import AtomicCheckpoint
from lit_dl.checkpointing.atomic_io import AtomicCheckpointIO
from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.checkpointing.loading import find_last_checkpoint
from lit_dl.cli import main
from lit_dl.errors import ConfigError
from tests.conftest import HANG_TIMEOUT


def test_ckpt_path_last_picks_the_newest_runs_last_checkpoint(tmp_path) -> None:
    for version, stamp in ((0, 2_000), (1, 3_000), (2, 1_000)):
        folder = tmp_path / f"version_{version}" / "checkpoints"
        folder.mkdir(parents=True)
        (folder / "last.ckpt").write_bytes(b"x")
        (folder / ".partial-1-2.tmp").write_bytes(b"x")

        os.utime(folder / "last.ckpt", ns=(stamp * 10**9, stamp * 10**9))
    assert find_last_checkpoint(tmp_path) == tmp_path / "version_1" / "checkpoints" / "last.ckpt"


def test_ckpt_path_last_without_a_previous_run_is_a_one_line_error(tmp_path, tiny_config, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path / "runs"),
              "--ckpt_path", "last"])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lit-dl: error: --ckpt_path last: no last.ckpt under ")
    assert not (tmp_path / "runs" / "lightning_logs").exists()
    with pytest.raises(ConfigError, match=r"version_\*/checkpoints/last\*\.ckpt"):
        find_last_checkpoint(tmp_path)


def test_state_key_is_modelcheckpoints_and_follows_its_inputs(tmp_path) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint

    atomic = AtomicCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", every_n_epochs=2)
    plain = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", every_n_epochs=2)
    assert atomic.state_key == plain.state_key
    assert atomic.state_key.startswith("ModelCheckpoint{'monitor': 'val/acc', 'mode': 'max'")
    assert atomic.state_key is atomic.state_key  # built once
    atomic.monitor = plain.monitor = "val/loss"
    assert atomic.state_key == plain.state_key and "val/loss" in atomic.state_key


def test_signature_is_modelcheckpoints_plus_two_keyword_options() -> None:
    import inspect

    from lightning.pytorch.callbacks import ModelCheckpoint

    ours = inspect.signature(AtomicCheckpoint).parameters
    theirs = inspect.signature(ModelCheckpoint).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    assert {name: p.default for name, p in theirs.items()} == {name: ours[name].default for name in theirs}
    assert all(ours[name].kind == p.kind for name, p in theirs.items())
    # the same types, as objects (LightningCLI and jsonargparse read them; a string would not parse)
    assert {name: ours[name].annotation for name in theirs} == {
        name: p.annotation for name, p in theirs.items()
    }
    extra = {name: (p.kind, p.default) for name, p in ours.items() if name not in theirs}
    assert extra == {
        "async_write": (inspect.Parameter.KEYWORD_ONLY, False),
        "last_min_seconds": (inspect.Parameter.KEYWORD_ONLY, 0.0),
    }
    assert AtomicCheckpoint(None, "{epoch}").filename == "{epoch}"  # positional, as ModelCheckpoint's


class ScoredModel(BoringModel):
    """Logs a fixed validation score per epoch, so when the monitor improves is known."""

    def __init__(self, scores: list[float]) -> None:
        super().__init__()
        self.scores = scores

    def on_validation_epoch_end(self) -> None:
        self.log("score", float(self.scores[self.current_epoch]))


def fit_scored(
    tmp_path, scores: list[float], writes: list[str], async_write: bool = False, **trainer_args
) -> AtomicCheckpoint:
    import lightning as L

    callback = AtomicCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_last=True, async_write=async_write
    )
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=len(scores), limit_train_batches=2, limit_val_batches=1,
        num_sanity_val_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback], **trainer_args,
    )  # fmt: skip
    save = trainer.save_checkpoint
    trainer.save_checkpoint = lambda path, *a, **k: (
        writes.append(os.path.basename(path)),
        save(path, *a, **k),
    )
    trainer.fit(ScoredModel(scores))
    return callback


@pytest.mark.parametrize("async_write", [False, True])
def test_last_ckpt_is_the_last_epoch_after_the_monitor_stopped_improving(tmp_path, async_write) -> None:
    writes: list[str] = []
    callback = fit_scored(tmp_path, [1.0, 3.0, 2.0, 2.0], writes, async_write)
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch=1-step=4.ckpt", "last.ckpt"]
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (3, 8)  # Lightning 2.6 alone leaves epoch 1 here
    assert callback.best_model_path == str(tmp_path / "epoch=1-step=4.ckpt")
    # epochs 0 and 1 improve: the top-k file and last.ckpt each; epochs 2 and 3 write last.ckpt
    assert writes == [
        "epoch=0-step=2.ckpt", "last.ckpt", "epoch=1-step=4.ckpt", "last.ckpt", "last.ckpt", "last.ckpt"
    ]  # fmt: skip


@pytest.mark.parametrize("async_write", [False, True])
def test_last_ckpt_beside_a_new_best_is_a_file_of_its_own(tmp_path, async_write) -> None:
    writes: list[str] = []
    fit_scored(tmp_path, [1.0, 2.0, 3.0], writes, async_write)
    best, last = tmp_path / "epoch=2-step=6.ckpt", tmp_path / "last.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=2-step=6.ckpt", "last.ckpt"]  # no .tmp left
    assert not os.path.samefile(best, last) and os.stat(last).st_nlink == 1
    # Slimming the best file (a later writer of that name) leaves last.ckpt's optimizer state alone.
    slim = torch.load(best, weights_only=True)
    slim.pop("optimizer_states")
    torch.save(slim, best)
    kept = torch.load(last, weights_only=True)
    assert kept["global_step"] == 6 and len(kept["optimizer_states"]) == 1


@pytest.mark.parametrize("async_write", [False, True])
def test_last_ckpt_follows_validations_inside_the_epoch(tmp_path, async_write) -> None:
    # validation twice per 2-batch epoch: checkpoints are written at validation end, not epoch end
    writes: list[str] = []
    fit_scored(tmp_path, [1.0, 3.0, 2.0], writes, async_write, val_check_interval=0.5)
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 6  # the last validation, in the epoch whose score fell
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["epoch=1-step=3.ckpt", "last.ckpt"]
    # last.ckpt at every validation, and beside it the new best files of steps 1 and 3
    assert writes == [
        "epoch=0-step=1.ckpt", "last.ckpt", "last.ckpt", "epoch=1-step=3.ckpt", "last.ckpt", "last.ckpt",
        "last.ckpt", "last.ckpt",
    ]  # fmt: skip


class RecordWeights(L.Callback):
    """The weights at each save point, to compare with what reaches the files."""

    def __init__(self) -> None:
        self.at_save: dict[int, dict[str, torch.Tensor]] = {}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.at_save[trainer.global_step] = {k: v.clone() for k, v in pl_module.state_dict().items()}


def slow_writes(monkeypatch, seconds: float = 0.2, fail: bool = False) -> None:
    """The background worker's writes take a while (training goes on meanwhile), or fail."""
    original = AtomicCheckpointIO._write_local

    def save(self, checkpoint, path):
        time.sleep(seconds)
        if fail:
            raise OSError(f"No space left on device: {path}")
        original(self, checkpoint, path)

    monkeypatch.setattr(AtomicCheckpointIO, "_write_local", save)


def test_async_writes_hold_the_state_of_their_save_point_and_have_landed_when_fit_returns(
    tmp_path, monkeypatch
):
    slow_writes(monkeypatch)
    record = RecordWeights()
    callback = AtomicCheckpoint(
        dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1, save_last=True, async_write=True
    )
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback, record],
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert isinstance(trainer.strategy.checkpoint_io, BackgroundCheckpointIO)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"epoch=0-step={s}.ckpt" for s in (1, 2, 3, 4)] + ["last.ckpt"]  # no .tmp left
    for step in (1, 2, 3, 4):
        saved = torch.load(tmp_path / f"epoch=0-step={step}.ckpt", weights_only=True)
        assert saved["global_step"] == step
        for name, value in record.at_save[step].items():
            assert torch.equal(saved["state_dict"][name], value)  # training went on during the write
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 4


def test_an_async_write_that_fails_stops_the_run_with_its_error(tmp_path, monkeypatch):
    slow_writes(monkeypatch, seconds=0.0, fail=True)
    callback = AtomicCheckpoint(dirpath=tmp_path, every_n_train_steps=1, async_write=True)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )  # fmt: skip
    with pytest.raises(OSError, match="No space left on device"):
        trainer.fit(BoringModel())
    assert not list(tmp_path.glob("*.ckpt"))


def test_saves_outside_the_callback_stay_synchronous_with_async_write(tmp_path, monkeypatch):
    # Lightning's SLURM handler requeues the job as soon as trainer.save_checkpoint returns
    slow_writes(monkeypatch)

    class SaveMidRun(L.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == 2:
                trainer.save_checkpoint(tmp_path / "hpc.ckpt")
                assert (tmp_path / "hpc.ckpt").is_file()
                assert torch.load(tmp_path / "epoch=0-step=1.ckpt", weights_only=True)["global_step"] == 1

    callback = AtomicCheckpoint(dirpath=tmp_path, every_n_train_steps=1, save_top_k=-1, async_write=True)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback, SaveMidRun()],
    )  # fmt: skip
    trainer.fit(BoringModel())


def test_a_logger_that_reads_checkpoint_files_keeps_the_writes_synchronous(tmp_path):
    class UploadingLogger(CSVLogger):
        def after_save_checkpoint(self, checkpoint_callback) -> None:
            paths = [checkpoint_callback.best_model_path, checkpoint_callback.last_model_path]
            assert all(os.path.isfile(path) for path in paths if path)
            uploads.append(paths)

    uploads: list[list[str]] = []

    callback = AtomicCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, async_write=True)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=0,
        logger=UploadingLogger(tmp_path), enable_progress_bar=False, enable_model_summary=False,
        callbacks=[callback],
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert not isinstance(trainer.strategy.checkpoint_io, BackgroundCheckpointIO)
    assert len(uploads) == 4  # the top-1 file and last.ckpt of each epoch, on disk when the logger was told


def test_the_default_loggers_let_the_writes_run_in_the_background(tmp_path):
    from lightning.pytorch.loggers import TensorBoardLogger

    from lit_dl.checkpointing.atomic_checkpoint import _reads_checkpoint_files

    assert not _reads_checkpoint_files(TensorBoardLogger(tmp_path))  # its override is a no-op
    assert not _reads_checkpoint_files(CSVLogger(tmp_path))


def test_last_name_metrics_equal_model_checkpoints_candidates_and_are_copies():
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lit_dl.checkpointing.atomic_checkpoint import _name_metrics

    metrics = {"val/acc": torch.tensor(0.75), "epoch": torch.tensor(3.0), "lr": 0.1}
    trainer = SimpleNamespace(callback_metrics=metrics, current_epoch=3, global_step=70)
    ours = _name_metrics(trainer)
    theirs = ModelCheckpoint._monitor_candidates(ModelCheckpoint(), trainer)
    assert ours.keys() == theirs.keys() == {"val/acc", "epoch", "lr", "step"}
    for name, value in theirs.items():
        assert type(ours[name]) is type(value)
        if isinstance(value, torch.Tensor):
            assert ours[name].dtype == value.dtype and torch.equal(ours[name], value)
        else:
            assert ours[name] == value
    metrics["val/acc"].add_(1)  # a later in-place update does not reach the candidates
    assert ours["val/acc"].item() == 0.75


def test_async_write_is_only_for_the_strategies_that_write_through_checkpoint_io():
    from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

    from lit_dl.checkpointing.atomic_checkpoint import _writes_through_checkpoint_io

    class OwnFilesStrategy(DDPStrategy):  # as DeepSpeedStrategy is
        pass

    assert _writes_through_checkpoint_io(SingleDeviceStrategy(device="cpu"))
    assert _writes_through_checkpoint_io(DDPStrategy())
    assert not _writes_through_checkpoint_io(OwnFilesStrategy())


@pytest.mark.parametrize(
    ("cadence", "steps"),
    [({"every_n_train_steps": 2}, [2, 4]), ({"train_time_interval": timedelta(0)}, [1, 2, 3, 4, 5])],
    ids=["every_n_train_steps", "train_time_interval"],
)
def test_batch_end_saves_follow_the_step_or_time_cadence(tmp_path, cadence, steps):
    # a checkpoint with neither cadence skips its batch-end hook early; with one it saves there
    callback = AtomicCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=0, **cadence)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=1, limit_train_batches=5, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"epoch=0-step={s}.ckpt" for s in steps]


class RecordDumps(L.Callback):
    """The global step of every checkpoint written."""

    def __init__(self) -> None:
        self.steps: list[int] = []

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.steps.append(checkpoint["global_step"])


class EpochClock(L.Callback):
    """A fake clock for AtomicCheckpoint's interval: epoch k ends at second k + 1 of the fit."""

    def __init__(self, monkeypatch) -> None:
        self.now = 0.0
        monkeypatch.setattr("lit_dl.checkpointing.atomic_checkpoint._clock", lambda: self.now)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.now += 1.0


@pytest.mark.parametrize(
    ("interval", "written"),
    [(0.0, [2, 4, 6, 8, 10]), (1.5, [4, 8, 10]), (3600.0, [10])],
    ids=["every-epoch", "every-other-epoch", "only-at-the-end"],
)
def test_last_min_seconds_spaces_the_writes_of_last_ckpt_and_the_end_brings_it_up_to_date(
    tmp_path, monkeypatch, interval, written
):
    # 5 epochs of 2 steps; no top-k files, so every write is last.ckpt's
    dumps = RecordDumps()
    callback = AtomicCheckpoint(dirpath=tmp_path, save_top_k=0, save_last=True, last_min_seconds=interval)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=5, limit_train_batches=2, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[EpochClock(monkeypatch), callback, dumps],
    )  # fmt: skip
    trainer.fit(BoringModel())
    assert dumps.steps == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 10


class ImprovesAtEpochs(BoringModel):
    """Logs ``score`` = 1 at the listed epochs and 0 at the others (a monitor that rarely improves)."""

    def __init__(self, improving: set[int]) -> None:
        super().__init__()
        self.improving = improving

    def on_train_epoch_end(self) -> None:
        self.log("score", float(self.current_epoch in self.improving) * (self.current_epoch + 1))


def test_a_top_k_save_still_refreshes_last_ckpt_within_the_interval(tmp_path, monkeypatch):
    dumps = RecordDumps()
    callback = AtomicCheckpoint(
        dirpath=tmp_path, monitor="score", mode="max", save_last=True, last_min_seconds=3600,
        filename="{epoch}",
    )  # fmt: skip
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[EpochClock(monkeypatch), callback, dumps],
    )  # fmt: skip
    trainer.fit(ImprovesAtEpochs(improving={1}))
    # epoch 0's score (0) is the first best, epoch 1's (2) the next, each written with last.ckpt beside
    # it; the end writes last.ckpt (step 8)
    assert dumps.steps == [2, 2, 4, 4, 8]
    best = tmp_path / "epoch=1.ckpt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=1.ckpt", "last.ckpt"]
    assert torch.load(best, weights_only=True)["global_step"] == 4
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 8


class RankClocks(L.Callback):
    """Each rank's own fake clock for the interval: rank 0's epoch k ends at second k + 1, rank 1's
    clock never moves (so rank 1 alone would never write). Records each rank's checkpoint steps."""

    def __init__(self, folder) -> None:
        self.folder = folder

    def setup(self, trainer, pl_module, stage) -> None:
        from lit_dl.checkpointing import atomic_checkpoint

        self.now, self.steps, self.rank = 0.0, [], trainer.global_rank
        atomic_checkpoint._clock = lambda: self.now  # in this spawned process only

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.now += 1.0 if self.rank == 0 else 0.0

    def on_save_checkpoint(self, trainer, pl_module, checkpoint) -> None:
        self.steps.append(checkpoint["global_step"])

    def teardown(self, trainer, pl_module, stage) -> None:
        (self.folder / f"rank{self.rank}.txt").write_text(repr(self.steps))
        if torch.distributed.is_initialized():  # see test_weight_init: close gloo before the exit
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def test_every_rank_follows_rank_zeros_clock_for_last_ckpt(tmp_path):
    # Were each rank to read its own clock, rank 0 would enter a save that rank 1 skips and wait for
    # it at the save's barrier (a timeout of HANG_TIMEOUT s here, then an error).
    from lightning.pytorch.strategies import DDPStrategy

    callback = AtomicCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=0, save_last=True, last_min_seconds=1.5)
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=5, limit_train_batches=2, limit_val_batches=0, logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=2,
        strategy=DDPStrategy(start_method="spawn", timeout=timedelta(seconds=HANG_TIMEOUT)),
        callbacks=[callback, RankClocks(tmp_path)],
    )  # fmt: skip
    trainer.fit(BoringModel())
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == "[4, 8, 10]"
    assert torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["global_step"] == 10


def fit_boring(tmp_path, callbacks, max_epochs: int, ckpt_path=None, **trainer_args) -> L.Trainer:
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=max_epochs, limit_train_batches=2, limit_val_batches=1,
        num_sanity_val_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=callbacks, **trainer_args,
    )  # fmt: skip
    trainer.fit(ScoredModel([3.0, 1.0, 2.0, 4.0, 0.0, 5.0]), ckpt_path=ckpt_path)
    return trainer


def test_best_and_top_k_state_moves_between_atomic_and_model_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def bookkeeping(callback):
        return (
            callback.best_model_path, callback.best_model_score, dict(callback.best_k_models),
            callback.kth_best_model_path, callback.kth_value, callback.last_model_path,
        )  # fmt: skip

    args = {
        "dirpath": tmp_path / "ckpt",
        "monitor": "score",
        "mode": "max",
        "save_top_k": 2,
        "save_last": True,
    }
    atomic = AtomicCheckpoint(**args)
    fit_boring(tmp_path, [atomic], max_epochs=2)
    assert sorted(atomic.best_k_models) == [
        str(tmp_path / "ckpt" / f"epoch={e}-step={2 * e + 2}.ckpt") for e in (0, 1)
    ]
    # resumed under Lightning's own class: the bookkeeping comes back and goes on (epoch 2's 2.0 beats 1.0)
    plain = ModelCheckpoint(**args)
    fit_boring(tmp_path, [plain], max_epochs=3, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert plain.best_model_score == 3.0 and plain.kth_value == 2.0
    assert sorted(plain.best_k_models) == [
        str(tmp_path / "ckpt" / f"epoch={e}-step={2 * e + 2}.ckpt") for e in (0, 2)
    ]
    # and back
    again = AtomicCheckpoint(**args)
    trainer = fit_boring(tmp_path, [again], max_epochs=3, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert trainer.global_step == 6  # nothing left to train: the restored state is all there is
    assert bookkeeping(again) == bookkeeping(plain)


def test_lightnings_async_checkpoint_io_writes_atomically_beneath_it(tmp_path):
    from lightning.pytorch.plugins.io import AsyncCheckpointIO

    callback = AtomicCheckpoint(dirpath=tmp_path, monitor="score", mode="max", save_last=True)
    trainer = fit_boring(tmp_path, [callback], max_epochs=3, plugins=[AsyncCheckpointIO()])
    io = trainer.strategy.checkpoint_io
    assert type(io) is AsyncCheckpointIO and type(io.checkpoint_io) is AtomicCheckpointIO
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "last.ckpt", weights_only=True)["global_step"] == 6


def test_async_write_with_lightnings_async_checkpoint_io_is_refused(tmp_path):
    from lightning.pytorch.plugins.io import AsyncCheckpointIO

    callback = AtomicCheckpoint(dirpath=tmp_path, async_write=True)
    with pytest.raises(
        ConfigError, match=r"^AtomicCheckpoint\(async_write=True\) and the AsyncCheckpointIO "
    ):
        fit_boring(tmp_path, [callback], max_epochs=1, plugins=[AsyncCheckpointIO()])
