"""One run, one folder: runs started at the same moment in one root each get a version folder of their
own, taken atomically (mkdir, retried on the next number), with their own config and checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lit_dl.cli import run_folder
from lit_dl.cli.run_folder import reserve_version_folder
from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO


def test_four_fits_started_at_once_in_one_root_get_four_folders_with_their_own_config_and_checkpoints(
    tmp_path,
) -> None:
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    dropouts = [0.1, 0.2, 0.3, 0.4]  # tells the runs apart in config.yaml and in the checkpoints
    procs = []
    for dropout in dropouts:
        command = [
            sys.executable, "-m", "lit_dl", "fit", "--config", str(CONFIGS / "digits_mlp.yaml"),
            "--trainer.default_root_dir", str(root), "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
            "--test_after_fit=false", f"--model.init_args.dropout={dropout}",
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
        )
    for proc in procs:
        _, stderr = proc.communicate(timeout=HANG_TIMEOUT)
        assert proc.returncode == 0, stderr[-3000:]

    runs = sorted((root / "lightning_logs").iterdir())
    assert [run.name for run in runs] == ["version_0", "version_1", "version_2", "version_3"]
    seen = []
    for run in runs:
        dropout = yaml.safe_load((run / "config.yaml").read_text())["model"]["init_args"]["dropout"]
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch=0-step=2.ckpt", "last.ckpt"]
        for checkpoint in (run / "checkpoints").iterdir():
            assert torch.load(checkpoint, weights_only=True)["hyper_parameters"]["dropout"] == dropout
        assert len(list(run.glob("events.out.tfevents.*"))) == 1
        seen.append(dropout)
    assert sorted(seen) == dropouts


def test_a_folder_taken_between_the_listing_and_the_mkdir_moves_the_run_to_the_next_number(
    tmp_path, monkeypatch
) -> None:
    logger = TensorBoardLogger(tmp_path)
    listing = run_folder._next_version
    listings = []

    def stale_listing(root: Path) -> int:
        version = listing(root)
        if not listings:  # another run's mkdir lands between the first listing and ours
            (root / f"version_{version}").mkdir()
        listings.append(version)
        return version

    monkeypatch.setattr(run_folder, "_next_version", stale_listing)
    folder = reserve_version_folder(logger)
    assert folder == tmp_path / "lightning_logs" / "version_1"
    assert listings == [0, 1]
    assert logger.log_dir == str(folder)


def test_runs_reserving_at_once_get_one_folder_each(tmp_path) -> None:
    (tmp_path / "lightning_logs" / "version_2").mkdir(parents=True)  # an earlier run
    (tmp_path / "lightning_logs" / "version_notes").mkdir()  # not a version number
    loggers = [TensorBoardLogger(tmp_path) if i % 2 else CSVLogger(tmp_path) for i in range(8)]
    start = threading.Barrier(len(loggers))
    folders: list[Path] = []

    def reserve(i: int) -> None:
        start.wait()
        folder = reserve_version_folder(loggers[i])
        assert folder is not None
        folders.append(folder)

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(len(loggers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(folders, key=lambda f: int(f.name[len("version_") :])) == [
        tmp_path / "lightning_logs" / f"version_{n}" for n in range(3, 11)
    ]
    assert sorted(logger.version for logger in loggers) == list(range(3, 11))


def test_a_logger_with_a_version_or_another_kind_is_left_as_it_is(tmp_path) -> None:
    assert reserve_version_folder(TensorBoardLogger(tmp_path, version="job_7")) is None
    assert reserve_version_folder(TensorBoardLogger(tmp_path, version=3)) is None
    assert reserve_version_folder(object()) is None
    assert not (tmp_path / "lightning_logs").exists()
