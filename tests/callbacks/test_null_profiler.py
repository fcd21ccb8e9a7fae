"""The CLI's default profiler: Lightning's pass-through profiler with a cheaper per-hook context."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.profilers import PassThroughProfiler, SimpleProfiler

from lit_dl.callbacks.null_profiler import NullProfiler
from lit_dl.cli import LitDLCLI


def build(config: Path, root: Path, *extra: str) -> LitDLCLI:
    return LitDLCLI(args=["--config", str(config), f"--trainer.default_root_dir={root}", *extra], run=False)


def test_profile_is_a_reusable_no_op_context_that_records_nothing(capsys) -> None:
    profiler = NullProfiler()
    assert isinstance(profiler, PassThroughProfiler)
    with profiler.profile("[Callback]A.on_train_start"):
        with profiler.profile("[Callback]B.on_train_start"):  # nested, as Lightning's hooks nest
            inside = True
    assert inside
    assert profiler.profile("x") is profiler.profile("y")  # one shared object: nothing per call
    with pytest.raises(KeyError):  # exceptions pass through untouched
        with profiler.profile("x"):
            raise KeyError("boom")
    assert profiler.summary() == ""
    profiler.describe()
    assert capsys.readouterr().out == ""


def test_cli_gives_the_trainer_the_null_profiler_when_the_config_sets_none(tiny_config, tmp_path) -> None:
    cli = build(tiny_config, tmp_path)
    assert type(cli.trainer.profiler) is NullProfiler
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.state.finished
    saved = (Path(cli.trainer.log_dir) / "config.yaml").read_text()
    assert "profiler: null" in saved  # the written config is the user's, not the CLI's choice


def test_a_configured_profiler_is_kept_and_times_the_hooks(tiny_config, tmp_path) -> None:
    cli = build(tiny_config, tmp_path, "--trainer.profiler=simple")
    assert type(cli.trainer.profiler) is SimpleProfiler
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    actions = cli.trainer.profiler.recorded_durations
    checkpoint = cli.trainer.checkpoint_callback
    steps = cli.trainer.global_step
    assert steps > 0
    assert len(actions[f"[Callback]{checkpoint.state_key}.on_train_batch_end"]) == steps
    assert len(actions["[Strategy]SingleDeviceStrategy.training_step"]) == steps


def test_barebones_gets_no_profiler_from_the_cli(tiny_config, tmp_path) -> None:
    # Lightning refuses any profiler in barebones mode: the CLI must not pass one.
    cli = build(
        tiny_config,
        tmp_path,
        "--trainer.barebones=true",
        "--trainer.callbacks=[]",
        "--trainer.logger=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.log_every_n_steps=null",
    )
    assert type(cli.trainer.profiler) is PassThroughProfiler
