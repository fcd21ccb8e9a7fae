"""Exact resume however often a run is interrupted, and from whichever ModelCheckpoint wrote the file:
a checkpoint written after a resume holds the loop progress of the uninterrupted run at that step, so
the next resume is exact too (CPU, deterministic, ``torch.equal``)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import main
from tests.checkpointing.test_exact_resume import RECIPE, assert_same_training_state, kill_config
from tests.cli_process import kill_at_marker, start_cli

BATCHES, EPOCHS = 6, 4  # optimizer steps per epoch, epochs: the uninterrupted run ends at step 24


def repeated_config(tmp_path: Path, device_resident: bool) -> Path:
    """``kill_config`` (the default recipe, 6 steps an epoch, warmup stepped per batch) with
    ``last.ckpt`` written after every step and four epochs."""
    path = kill_config(tmp_path, device_resident)
    config = yaml.safe_load(path.read_text())
    for callback in config["trainer"]["callbacks"]:
        if callback["class_path"] == "lit_dl.callbacks.AtomicCheckpoint":
            callback["init_args"]["every_n_train_steps"] = 1
    config["trainer"]["max_epochs"] = EPOCHS
    path.write_text(yaml.safe_dump(config))
    return path


def newest_last(root: Path) -> dict:
    files = list((root / "lightning_logs").glob("version_*/checkpoints/last.ckpt"))
    return torch.load(max(files, key=lambda p: p.stat().st_mtime_ns), weights_only=True)


def kill_steps(count: int, seed: int) -> list[int]:
    """Steps to kill at, each 2 or 3 steps after the previous kill left its last.ckpt (the stall at
    step k comes before step k's checkpoint: k - 1 is saved). Fixed by ``seed``."""
    rng, steps, saved = random.Random(seed), [], 0
    for _ in range(count):
        steps.append(saved + rng.choice((2, 3)))
        saved = steps[-1] - 1
    return steps


@pytest.mark.parametrize("device_resident", [False, True], ids=["dataloader", "device_batches"])
def test_ten_kill_9_restarts_with_ckpt_path_last_end_at_the_uninterrupted_step_and_weights(
    tmp_path, device_resident
) -> None:
    config = repeated_config(tmp_path, device_resident)
    steps = kill_steps(10, seed=26)
    # the case two resumes in a row broke: a resume from an epoch's last batch, killed again after it
    assert any(s - 1 in (BATCHES, 2 * BATCHES) for s in steps[:-1])
    assert steps[-1] < BATCHES * EPOCHS
    root = tmp_path / "killed"
    for restart, step in enumerate(steps):
        marker, log = tmp_path / f"stalled-{restart}", tmp_path / f"restart-{restart}.log"
        stall = {
            "class_path": "tests.probe_callbacks.StallAtStep",
            "init_args": {"step": step, "marker": str(marker)},
        }
        args = ["fit", "--config", config, "--trainer.default_root_dir", root,
                f"--trainer.callbacks+={yaml.safe_dump(stall)}", *(["--ckpt_path", "last"] if restart else [])]  # fmt: skip
        kill_at_marker(start_cli(args, log), marker, log, f"restart {restart} stalling at step {step}")
        assert newest_last(root)["global_step"] == step - 1
    main(["fit", "--config", str(config), "--trainer.default_root_dir", str(root), "--ckpt_path", "last"])
    main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "whole")])
    whole = newest_last(tmp_path / "whole")
    assert whole["global_step"] == BATCHES * EPOCHS
    assert_same_training_state(newest_last(root), whole)


def every_step_files(dirpath: Path) -> list[str]:
    """Lightning's own ModelCheckpoint appended to the default bundle, keeping a file after every step.

    It monitors ``step`` so that its state key differs from the bundle's unmonitored every-step
    checkpoint (Lightning refuses two checkpoint callbacks with one key)."""
    return [
        "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
        f"--trainer.callbacks.dirpath={dirpath}",
        "--trainer.callbacks.monitor=step",
        "--trainer.callbacks.mode=max",
        "--trainer.callbacks.every_n_train_steps=1",
        "--trainer.callbacks.save_top_k=-1",
        "--trainer.callbacks.filename={step}",
    ]


def test_two_resumes_in_a_row_from_an_epochs_last_batch_end_at_the_uninterrupted_step_and_weights(
    tmp_path,
) -> None:
    config = repeated_config(tmp_path, device_resident=False)
    run = ["fit", "--config", str(config)]
    main([*run, "--trainer.default_root_dir", str(tmp_path / "whole"), *every_step_files(tmp_path / "w")])
    # first resume: from the checkpoint written at the last batch of epoch 0 (before its epoch end)
    first = tmp_path / "w" / f"step={BATCHES}.ckpt"
    main([*run, "--trainer.default_root_dir", str(tmp_path / "r1"), "--ckpt_path", str(first),
          *every_step_files(tmp_path / "f")])  # fmt: skip
    # a checkpoint the resumed run wrote in the next epoch has the uninterrupted run's loop progress
    after = f"step={BATCHES + 2}.ckpt"
    resumed, uninterrupted = (
        torch.load(d / after, weights_only=True) for d in (tmp_path / "f", tmp_path / "w")
    )
    assert resumed["loops"] == uninterrupted["loops"]
    # second resume, from that file: no batch of epoch 1 is trained twice
    main([*run, "--trainer.default_root_dir", str(tmp_path / "r2"), "--ckpt_path", str(tmp_path / "f" / after),
          *every_step_files(tmp_path / "s")])  # fmt: skip
    end = f"step={BATCHES * EPOCHS}.ckpt"
    assert max(int(p.stem.removeprefix("step=")) for p in (tmp_path / "s").iterdir()) == BATCHES * EPOCHS
    assert_same_training_state(
        torch.load(tmp_path / "s" / end, weights_only=True),
        torch.load(tmp_path / "w" / end, weights_only=True),
    )


@pytest.mark.parametrize(
    "save_point",
    [
        ["--trainer.callbacks.save_top_k=0"],
        ["--trainer.callbacks.save_top_k=0", "--trainer.callbacks.every_n_train_steps=4"],
    ],
    ids=["epoch_end", "every_4_steps"],
)
def test_resume_from_an_appended_lightning_model_checkpoints_last_ckpt_is_exact(tmp_path, save_point) -> None:
    # the default recipe, 6 epochs, with Lightning's own ModelCheckpoint appended from the command line;
    # stopped after 3 of 6 epochs (a preempted run) and resumed from that callback's last.ckpt
    args = [
        "fit", "--config", str(RECIPE), "--trainer.max_epochs", "6", "--trainer.limit_train_batches", "5",
        "--trainer.limit_val_batches", "1", "--trainer.deterministic", "true",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--test_after_fit", "false",
    ]  # fmt: skip

    def plain(dirpath: Path) -> list[str]:
        return [
            "--trainer.callbacks+=lightning.pytorch.callbacks.ModelCheckpoint",
            f"--trainer.callbacks.dirpath={dirpath}",
            "--trainer.callbacks.save_last=true",
            *save_point,
        ]

    main([*args, "--trainer.default_root_dir", str(tmp_path / "whole"), *plain(tmp_path / "whole_ckpts")])
    stop = {"class_path": "tests.probe_callbacks.StopAfterEpoch", "init_args": {"epoch": 2}}
    main([*args, "--trainer.default_root_dir", str(tmp_path / "split"), *plain(tmp_path / "split_ckpts"),
          f"--trainer.callbacks+={yaml.safe_dump(stop)}"])  # fmt: skip
    stopped = torch.load(tmp_path / "split_ckpts" / "last.ckpt", weights_only=True)
    assert stopped["global_step"] == (15 if save_point[1:] == [] else 12)
    main([*args, "--trainer.default_root_dir", str(tmp_path / "split"), *plain(tmp_path / "resumed_ckpts"),
          "--ckpt_path", str(tmp_path / "split_ckpts" / "last.ckpt")])  # fmt: skip
    whole = torch.load(tmp_path / "whole_ckpts" / "last.ckpt", weights_only=True)
    resumed = torch.load(tmp_path / "resumed_ckpts" / "last.ckpt", weights_only=True)
    # every 4 steps: the last save point is step 28 of 30
    assert whole["global_step"] == (30 if save_point[1:] == [] else 28)
    assert_same_training_state(resumed, whole)
