"""AtomicCheckpoint: a write cut short leaves the previous file intact under its name."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from lit_dl.callbacks import AtomicCheckpoint
from lit_dl.checkpoints import find_last_checkpoint
from lit_dl.cli import main
from lit_dl.errors import ConfigError


class Killed(BaseException):
    """Stands in for the process dying in the middle of a write."""


def fake_trainer(write) -> SimpleNamespace:
    return SimpleNamespace(
        save_checkpoint=write,
        is_global_zero=True,
        strategy=SimpleNamespace(barrier=lambda name=None: None),
        global_step=7,
        loggers=[],
    )


def test_a_write_cut_short_leaves_the_previous_checkpoint_intact(tmp_path) -> None:
    target = tmp_path / "last.ckpt"
    callback = AtomicCheckpoint(dirpath=tmp_path)
    callback._save_checkpoint(
        fake_trainer(lambda path, weights_only: torch.save({"step": 6}, path)), str(target)
    )
    assert torch.load(target, weights_only=True) == {"step": 6}

    def dies_halfway(path, weights_only):
        with open(path, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise Killed

    with pytest.raises(Killed):
        callback._save_checkpoint(fake_trainer(dies_halfway), str(target))
    assert torch.load(target, weights_only=True) == {"step": 6}  # the complete, older file
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert len(leftovers) == 1 and leftovers[0].endswith(".tmp") and "last" not in leftovers[0]
    assert callback.last_model_path == "" and callback._last_global_step_saved == 7


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

    atomic = AtomicCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max")
    uncached = ModelCheckpoint.state_key.fget
    assert atomic.state_key == uncached(atomic)
    assert atomic.state_key is atomic.state_key  # built once
    atomic.monitor = "val/loss"
    assert atomic.state_key == uncached(atomic) and "val/loss" in atomic.state_key
