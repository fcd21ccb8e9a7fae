"""AtomicCheckpointIO: files complete under their final names, written on the target's disk only,
through whatever checkpoint I/O plugin the Trainer has (local, fsspec URLs, a user's own)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import fsspec
import lightning as L
import pytest
import torch
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.callbacks import OnExceptionCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from lit_dl.callbacks import AtomicCheckpoint
from lit_dl.checkpointing.atomic_io import _HOST, AtomicCheckpointIO, install_atomic_io
from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.cli import main
from lit_dl.errors import ConfigError
from tests.conftest import HANG_TIMEOUT

REPO = Path(__file__).resolve().parents[2]


class Killed(BaseException):
    """Stands in for the process dying in the middle of a write."""


def test_a_write_cut_short_leaves_the_previous_checkpoint_intact_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "last.ckpt"
    atomic = AtomicCheckpointIO()
    atomic.save_checkpoint({"step": 6}, target)
    assert torch.load(target, weights_only=True) == {"step": 6}

    def dies_halfway(obj, f):
        f.write(b"PK\x03\x04 half a zip")
        raise Killed

    monkeypatch.setattr(torch, "save", dies_halfway)
    with pytest.raises(Killed):
        atomic.save_checkpoint({"step": 7}, target)
    assert torch.load(target, weights_only=True) == {"step": 6}  # the complete, older file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


KILLED_WRITER = """
import sys, time, torch
from lit_dl.checkpointing.atomic_io import AtomicCheckpointIO
atomic = AtomicCheckpointIO()
atomic.save_checkpoint({"step": 1}, sys.argv[1])
def stalls(obj, f):
    f.write(b"PK\\x03\\x04" + bytes(4096))
    f.flush()
    open(sys.argv[2], "w").write("writing")
    time.sleep(600)
torch.save = stalls
atomic.save_checkpoint({"step": 2}, sys.argv[1])
"""


def test_a_writer_killed_mid_write_leaves_the_old_file_and_the_next_write_removes_its_temporary(tmp_path):
    target, marker = tmp_path / "ckpt" / "last.ckpt", tmp_path / "writing"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target), str(marker)], env=env)
    try:
        deadline = time.monotonic() + HANG_TIMEOUT
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        proc.kill()
    (partial,) = [p.name for p in target.parent.iterdir() if p != target]
    assert partial.startswith(".partial-") and f"-{proc.pid}-" in partial and partial.endswith(".tmp")
    assert torch.load(target, weights_only=True) == {"step": 1}
    live = target.parent / f".partial-{_HOST}-{os.getpid()}-0.tmp"  # a live writer's
    live.write_bytes(b"x")

    AtomicCheckpointIO().save_checkpoint({"step": 3}, target)  # the next writer into the folder
    assert sorted(p.name for p in target.parent.iterdir()) == [live.name, "last.ckpt"]
    assert torch.load(target, weights_only=True) == {"step": 3}


def test_loading_from_a_folder_removes_the_temporaries_of_dead_writers(tmp_path):
    folder = tmp_path / "ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, folder / "last.ckpt")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    stale = folder / f".partial-{_HOST}-{int(dead.stdout)}-abc.tmp"
    other_host = folder / f".partial-elsewhere-{int(dead.stdout)}-abc.tmp"
    stale.write_bytes(b"x")
    other_host.write_bytes(b"x")
    assert AtomicCheckpointIO().load_checkpoint(folder / "last.ckpt") == {"step": 1}
    assert sorted(p.name for p in folder.iterdir()) == [other_host.name, "last.ckpt"]


class DictCheckpointIO(CheckpointIO):
    """A user's plugin that keeps checkpoints in memory, by the names it is given."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        self.files[str(path)] = buffer.getvalue()

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        return torch.load(
            io.BytesIO(self.files[str(path)]), map_location=map_location, weights_only=weights_only
        )

    def remove_checkpoint(self, path) -> None:
        self.files.pop(str(path), None)


class ScoredModel(BoringModel):
    def on_validation_epoch_end(self) -> None:
        self.log("score", float([1.0, 3.0, 2.0, 4.0][self.current_epoch]))


def fit(tmp_path, callbacks, max_epochs, ckpt_path=None, **trainer_args) -> L.Trainer:
    trainer = L.Trainer(
        default_root_dir=tmp_path, max_epochs=max_epochs, limit_train_batches=2, limit_val_batches=1,
        num_sanity_val_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=callbacks, **trainer_args,
    )  # fmt: skip
    trainer.fit(ScoredModel(), ckpt_path=ckpt_path)
    return trainer


def checkpoint_args(dirpath) -> dict:
    return {"dirpath": dirpath, "monitor": "score", "mode": "max", "save_last": True}


def test_a_user_checkpoint_io_receives_final_names_and_fit_resumes_from_it(tmp_path):
    store = DictCheckpointIO()
    fit(tmp_path, [AtomicCheckpoint(**checkpoint_args(tmp_path / "ckpt"))], 3, plugins=[store])
    assert sorted(Path(name).name for name in store.files) == ["epoch=1-step=4.ckpt", "last.ckpt"]
    assert all(Path(name).parent == tmp_path / "ckpt" for name in store.files)
    assert not (tmp_path / "ckpt").exists()  # the plugin keeps the bytes; nothing was written or renamed here
    last = str(tmp_path / "ckpt" / "last.ckpt")
    resumed = fit(
        tmp_path, [AtomicCheckpoint(**checkpoint_args(tmp_path / "ckpt"))], 4, ckpt_path=last, plugins=[store]
    )
    assert resumed.global_step == 8
    assert torch.load(io.BytesIO(store.files[last]), weights_only=True)["global_step"] == 8
    assert sorted(Path(name).name for name in store.files) == ["epoch=3-step=8.ckpt", "last.ckpt"]


def test_a_remote_dirpath_is_written_and_resumed_from(tmp_path):
    root = f"memory://lit-dl-{uuid.uuid4().hex}/ckpt"
    fs = fsspec.filesystem("memory")
    fit(tmp_path, [AtomicCheckpoint(**checkpoint_args(root))], 3)
    assert sorted(Path(p).name for p in fs.ls(root, detail=False)) == ["epoch=1-step=4.ckpt", "last.ckpt"]
    resumed = fit(tmp_path, [AtomicCheckpoint(**checkpoint_args(root))], 4, ckpt_path=f"{root}/last.ckpt")
    assert resumed.global_step == 8
    assert sorted(Path(p).name for p in fs.ls(root, detail=False)) == ["epoch=3-step=8.ckpt", "last.ckpt"]
    with fs.open(f"{root}/last.ckpt", "rb") as f:
        assert torch.load(f, weights_only=True)["global_step"] == 8
    assert not list(tmp_path.iterdir())  # nothing local


def test_the_wrapper_goes_beneath_the_plugins_that_only_move_writes_to_a_thread():
    class Strategy:
        checkpoint_io: CheckpointIO

    strategy = Strategy()
    strategy.checkpoint_io = TorchCheckpointIO()
    atomic = install_atomic_io(strategy)
    assert strategy.checkpoint_io is atomic and type(atomic.checkpoint_io) is TorchCheckpointIO
    assert install_atomic_io(strategy) is atomic  # idempotent

    user = DictCheckpointIO()
    strategy.checkpoint_io = BackgroundCheckpointIO(AsyncCheckpointIO(user))
    atomic = install_atomic_io(strategy)
    background = strategy.checkpoint_io
    assert isinstance(background, BackgroundCheckpointIO) and type(background.inner) is AsyncCheckpointIO
    assert background.inner.checkpoint_io is atomic and atomic.checkpoint_io is user


def test_a_plugin_that_overrides_the_write_gets_the_final_name_and_one_that_does_not_is_written_atomically(
    tmp_path, monkeypatch
):
    names: list[str] = []

    class OwnWrite(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            names.append(os.path.basename(path))
            super().save_checkpoint(checkpoint, path, storage_options)

    class OwnLoad(TorchCheckpointIO):
        def load_checkpoint(self, path, map_location=None, weights_only=None):
            return {"loaded": str(path)}

    AtomicCheckpointIO(OwnWrite()).save_checkpoint({"a": 1}, tmp_path / "a.ckpt")
    assert names == ["a.ckpt"]
    monkeypatch.setattr(
        tempfile, "tempdir", str(tmp_path / "a.ckpt" / "no-tmp")
    )  # Lightning's own write needs it
    AtomicCheckpointIO(OwnLoad()).save_checkpoint({"b": 2}, tmp_path / "b.ckpt")
    assert torch.load(tmp_path / "b.ckpt", weights_only=True) == {"b": 2}
    assert AtomicCheckpointIO(OwnLoad()).load_checkpoint(tmp_path / "b.ckpt") == {
        "loaded": str(tmp_path / "b.ckpt")
    }


# ---------------------------------------------------------------------------------------------------
# Disks: a full $TMPDIR, a full or read-only run disk.


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 64 kB tmpfs (root only): room for a few small files, not for a checkpoint."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)]).returncode
    ):
        pytest.skip("needs root to mount a tmpfs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture(params=["unwritable", "full_tmpfs"])
def broken_tmpdir(request, tmp_path, monkeypatch):
    """$TMPDIR where no checkpoint fits: a path below a file (every write fails, as on any system) or
    a full 64 kB tmpfs."""
    if request.param == "full_tmpfs":
        folder = request.getfixturevalue("tiny_tmpfs")
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(bytes(4096))
                f.flush()
    else:
        (tmp_path / "a-file").write_text("x")
        folder = tmp_path / "a-file" / "tmp"
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_with_a_broken_tmpdir_every_write_through_the_strategy_still_lands(tmp_path, broken_tmpdir):
    class FailsAtStep3(BoringModel):
        def training_step(self, batch, batch_idx):
            if self.global_step == 3:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    def trainer(callbacks) -> L.Trainer:
        return L.Trainer(
            default_root_dir=tmp_path, max_epochs=3, limit_train_batches=2, limit_val_batches=0, logger=False,
            enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
            enable_checkpointing=bool(callbacks),
        )  # fmt: skip

    plain = trainer([])
    plain.fit(BoringModel())
    with pytest.raises(OSError):  # Lightning's own write goes through $TMPDIR
        plain.save_checkpoint(tmp_path / "plain.ckpt")

    on_exception = OnExceptionCheckpoint(dirpath=tmp_path / "crash")
    atomic = trainer([AtomicCheckpoint(dirpath=tmp_path / "ckpt", save_last=True), on_exception])
    with pytest.raises(RuntimeError, match="boom"):
        atomic.fit(FailsAtStep3())
    atomic.save_checkpoint(tmp_path / "manual.ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
    assert torch.load(tmp_path / "crash" / "on_exception.ckpt", weights_only=True)["global_step"] == 3
    assert torch.load(tmp_path / "manual.ckpt", weights_only=True)["global_step"] == 3


def test_the_default_recipe_trains_and_checkpoints_with_a_broken_tmpdir(tmp_path, broken_tmpdir):
    main(["fit", "--config", "digits_mlp.yaml", "--trainer.default_root_dir", str(tmp_path / "runs"),
          "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])  # fmt: skip
    folder = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert names[-1] == "last.ckpt" and len(names) == 2 and names[0].startswith("epoch=")
    assert torch.load(folder / "last.ckpt", weights_only=True)["epoch"] == 1


def test_a_full_run_disk_is_one_line_naming_the_folder_and_leaves_nothing(tiny_tmpfs):
    (tiny_tmpfs / "ckpt").mkdir()
    (tiny_tmpfs / "ckpt" / "last.ckpt").write_bytes(b"old")
    with pytest.raises(ConfigError) as error:
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(100_000)}, tiny_tmpfs / "ckpt" / "last.ckpt")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(
        f"cannot write checkpoint '{tiny_tmpfs / 'ckpt' / 'last.ckpt'}': No space left on device ("
    )
    assert (
        f"MiB free in {tiny_tmpfs / 'ckpt'}); free space on that disk or write the run elsewhere" in message
    )
    assert sorted(p.name for p in (tiny_tmpfs / "ckpt").iterdir()) == ["last.ckpt"]  # the old file, no .tmp
    assert (tiny_tmpfs / "ckpt" / "last.ckpt").read_bytes() == b"old"


def test_a_read_only_run_disk_is_one_line_naming_the_folder(tiny_tmpfs):
    (tiny_tmpfs / "ckpt").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    with pytest.raises(
        ConfigError,
        match=r"^cannot write checkpoint '.*last\.ckpt': Read-only file system in .*/ckpt; make that folder writable or write the run elsewhere \(--trainer.default_root_dir",
    ):
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tiny_tmpfs / "ckpt" / "last.ckpt")
    assert list((tiny_tmpfs / "ckpt").iterdir()) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS], ids=["full", "read_only"])
def test_fit_on_a_disk_that_refuses_the_checkpoint_exits_2_with_one_line(
    tmp_path, tiny_config, capsys, monkeypatch, code
):
    # any system: the write fails half-way as a full (or read-only) disk makes it
    def refused(obj, f):
        f.write(b"PK\x03\x04")
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(torch, "save", refused)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    folder = tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints"
    assert line.startswith(f"lit-dl: error: cannot write checkpoint '{folder}{os.sep}")
    assert f"{os.strerror(code)}" in line and "write the run elsewhere (--trainer.default_root_dir" in line
    assert sorted(p.name for p in folder.iterdir()) == []  # no temporary file left


def test_the_plugin_given_in_the_config_is_the_one_used(tmp_path, tiny_config):
    from lit_dl.cli import LitDLCLI

    cli = LitDLCLI(
        args=["--config", str(tiny_config), "--trainer.default_root_dir", str(tmp_path / "runs"),
              "--trainer.plugins=lit_dl.checkpointing.AtomicCheckpointIO", "--trainer.plugins.init_args.fsync=true"],
        run=False,
    )  # fmt: skip
    io = cli.trainer.strategy.checkpoint_io
    assert type(io) is AtomicCheckpointIO and io.fsync and type(io.checkpoint_io) is TorchCheckpointIO
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    (path,) = (tmp_path / "runs" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")
    step = torch.load(path, weights_only=True)["global_step"]
    assert path.name == f"epoch={step // 6 - 1}-step={step}.ckpt"  # 6 steps an epoch
