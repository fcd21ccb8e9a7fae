"""SIGTERM and SIGINT stop a command with 128 + signal on every rank, with a checkpoint to resume from
exactly where training had started and no run folder where it had not; SLURM's requeue continues the
run in its own folder; the checkpoint a requeued job would resume from is checked like --ckpt_path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from lit_dl.cli import main
from lit_dl.cli.run_folder import reserve_run_folder
from tests.checkpointing.test_exact_resume import assert_same_training_state
from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO

RECIPE = CONFIGS / "digits_mlp.yaml"


def signal_config(folder: Path) -> Path:
    """The default recipe with its callback bundle as shipped (best by val/acc, last.ckpt at most once a
    minute, so that an interrupted run's last.ckpt comes from the stop), 4 steps per epoch, 2 epochs,
    a warmup schedule stepped per batch."""
    config = yaml.safe_load(RECIPE.read_text())
    config["trainer"]["callbacks"] = yaml.safe_load(
        (RECIPE.parent / config["trainer"]["callbacks"]).read_text()
    )
    config["trainer"].update(
        max_epochs=2, limit_train_batches=4, limit_val_batches=2, limit_test_batches=2, accelerator="cpu",
        deterministic=True, log_every_n_steps=2, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    model = config["model"]["init_args"]
    model["scheduler_interval"] = "step"
    model["lr_scheduler"]["init_args"]["warmup_steps"] = 4
    config["test_after_fit"] = False
    path = folder / "signals.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def fit_args(config: Path, root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(config), "--trainer.default_root_dir", str(root), *extra]


def signal_at(hook: str, step: int = 0, signum: int = signal.SIGTERM) -> str:
    callback = {
        "class_path": "tests.probe_callbacks.SignalAt",
        "init_args": {"hook": hook, "step": step, "signum": int(signum)},
    }
    return f"--trainer.callbacks+={yaml.safe_dump(callback)}"


def last_state(run_dir: Path) -> dict:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, dict]:
    """The config and the final state of the run that nothing interrupts."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    config = signal_config(folder)
    main(fit_args(config, folder / "runs"))
    state = last_state(folder / "runs" / "lightning_logs" / "version_0")
    assert state["global_step"] == 8
    return config, state


@pytest.mark.parametrize(
    ("hook", "step", "signum", "stopped_at", "resume", "extra"),
    [
        ("setup", 0, signal.SIGTERM, None, False, ()),
        ("on_sanity_check_start", 0, signal.SIGTERM, None, False, ()),
        ("on_train_batch_end", 5, signal.SIGTERM, 5, True, ()),
        ("on_train_batch_end", 5, signal.SIGINT, 5, False, ()),  # the same stop as SIGTERM's
        # validation runs to its end (the best checkpoint), the next training batch stops
        ("on_validation_batch_end", 4, signal.SIGTERM, 5, True, ()),
        ("on_test_batch_end", 0, signal.SIGTERM, 8, False, ("--test_after_fit=true",)),
    ],
    ids=[
        "start-up",
        "sanity-check",
        "mid-epoch",
        "ctrl-c-mid-epoch",
        "during-validation",
        "during-fits-test",
    ],
)
def test_a_signal_exits_128_plus_it_with_a_checkpoint_that_resumes_exactly_or_no_run_folder(
    tmp_path, capsys, uninterrupted, hook, step, signum, stopped_at, resume, extra
) -> None:
    config, whole = uninterrupted
    root = tmp_path / "runs"
    with pytest.raises(SystemExit) as stopped:
        main(fit_args(config, root, *extra, signal_at(hook, step, signum)))
    assert stopped.value.code == 128 + signum
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-dl:")]
    name = signal.Signals(signum).name
    if stopped_at is None:  # before the first step: nothing to resume, no folder
        assert lines == [f"lit-dl: stopped by {name} (exit status {128 + signum})"]
        assert not root.exists()
        return
    run_dir = root / "lightning_logs" / "version_0"
    last = run_dir / "checkpoints" / "last.ckpt"
    assert lines == [
        f"lit-dl: stopped by {name} (exit status {128 + signum}); resume from {last} (--ckpt_path last)"
    ]
    assert (run_dir / "config.yaml").is_file()
    assert last_state(run_dir)["global_step"] == stopped_at  # written at the stop, not a minute before
    if stopped_at == whole["global_step"]:  # training had ended: its last.ckpt is the final state
        assert_same_training_state(last_state(run_dir), whole)
    if resume:
        main(fit_args(config, root, *extra, "--ckpt_path", "last"))
        assert_same_training_state(last_state(root / "lightning_logs" / "version_1"), whole)


# Lightning's DDP launcher starts rank 1 by re-running this script with the same arguments; each
# process records how it exited.
RUNNER = """
import os, sys
from pathlib import Path
from lit_dl.cli import main

code = "no exit"
try:
    main()
    code = 0
except SystemExit as exit:
    code = exit.code
    raise
finally:
    Path(sys.argv[0]).with_name(f"exit_rank{os.environ.get('LOCAL_RANK', '0')}").write_text(str(code))
"""


def start_ddp_fit(folder: Path, config: Path, *args: str) -> subprocess.Popen:
    """Start ``lit-dl fit --config config *args`` on 2 DDP processes from a runner in ``folder`` (made
    here); each rank writes its exit status to ``folder/exit_rank<r>``."""
    folder.mkdir()
    runner = folder / "run_lit_dl.py"
    runner.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MASTER_PORT", None)
    return subprocess.Popen(
        [sys.executable, str(runner), *fit_args(config, *args), "--trainer.devices=2", "--trainer.strategy=ddp"],
        cwd=folder.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_sigterm_to_one_ddp_rank_stops_every_rank_with_143_and_a_checkpoint_that_resumes_exactly(
    tmp_path,
) -> None:
    # The signal goes to rank 1 alone (rank 0, the launcher, gets none): Lightning 2.6.6's own handler
    # broadcasts from inside the signal handler and hangs the run here.
    marker = tmp_path / "waiting"
    wait = {
        "class_path": "tests.probe_callbacks.WaitForSignalAt",
        "init_args": {"step": 3, "marker": str(marker), "rank": 1},
    }
    config, root = signal_config(tmp_path), tmp_path / "runs"

    def start(name: str, *args: str) -> subprocess.Popen:
        return start_ddp_fit(tmp_path / name, config, *args)

    whole = start("whole", tmp_path / "whole_run")  # the uninterrupted run, meanwhile
    proc = start("stopped", root, f"--trainer.callbacks+={yaml.safe_dump(wait)}")
    try:
        deadline = time.monotonic() + HANG_TIMEOUT
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read()[-3000:]
            assert time.monotonic() < deadline, "rank 1 never reached step 3"
            time.sleep(0.2)
        os.kill(int(marker.read_text()), signal.SIGTERM)
        Path(f"{marker}.go").touch()
        _, stderr = proc.communicate(timeout=HANG_TIMEOUT)
        assert proc.returncode == 143, stderr[-3000:]
        assert (tmp_path / "stopped" / "exit_rank0").read_text() == "143"
        assert (tmp_path / "stopped" / "exit_rank1").read_text() == "143"
        run_dir = root / "lightning_logs" / "version_0"
        last = run_dir / "checkpoints" / "last.ckpt"
        assert [line for line in stderr.splitlines() if line.startswith("lit-dl:")] == [
            f"lit-dl: stopped by SIGTERM (exit status 143); resume from {last} (--ckpt_path last)"
        ]
        assert "Traceback" not in stderr
        assert last_state(run_dir)["global_step"] == 3

        resumed = start("resumed", root, "--ckpt_path", "last")
        for run in (resumed, whole):
            _, stderr = run.communicate(timeout=HANG_TIMEOUT)
            assert run.returncode == 0, stderr[-3000:]
    finally:
        for run in (proc, whole, *([resumed] if "resumed" in locals() else [])):
            run.kill()
    assert_same_training_state(
        last_state(root / "lightning_logs" / "version_1"),
        last_state(tmp_path / "whole_run" / "lightning_logs" / "version_0"),
    )


@pytest.mark.parametrize(
    ("hook", "rank"),
    [("setup", 1), ("on_sanity_check_start", 1), ("setup", 0)],
    ids=["rank-1-setup", "rank-1-sanity-check", "rank-0-setup"],
)
def test_sigterm_to_one_ddp_rank_before_training_stops_every_rank_with_143_and_no_run_folder(
    tmp_path, hook, rank
) -> None:
    # rank 1 in setup: outside a running stage, it stops at once and rank 0's next collective fails;
    # rank 1 at the sanity check: Lightning's own handler is installed by then, and lit_dl's must have
    # taken its place before any other callback's hook runs; rank 0 in setup: it passes the signal
    # on to the rank it launched.
    config, root = signal_config(tmp_path), tmp_path / "runs"
    signal_one = {"class_path": "tests.probe_callbacks.SignalAt", "init_args": {"hook": hook, "rank": rank}}
    proc = start_ddp_fit(
        tmp_path / "stopped", config, root, f"--trainer.callbacks+={yaml.safe_dump(signal_one)}"
    )
    try:
        _, stderr = proc.communicate(timeout=HANG_TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 143, stderr[-3000:]
    assert (tmp_path / "stopped" / "exit_rank0").read_text() == "143"
    assert (tmp_path / "stopped" / "exit_rank1").read_text() == "143"
    assert [line for line in stderr.splitlines() if line.startswith("lit-dl:")] == [
        "lit-dl: stopped by SIGTERM (exit status 143)"
    ]
    assert "Traceback" not in stderr
    assert not root.exists()  # nothing trained: no run folder


SLURM_JOB = {
    "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "train", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
    "SLURM_NODELIST": "127.0.0.1",
}  # fmt: skip

# `scontrol requeue` as SLURM runs it: the job is cancelled (SIGTERM to the process that called it)
# and later started again under the same job ID.
FAKE_SCONTROL = """#!/bin/sh
echo "$@" >> "{log}"
kill -TERM $PPID
"""


@pytest.fixture
def slurm_job(tmp_path, monkeypatch) -> Path:
    """A faked SLURM job (one task, job 4242) with an `scontrol` that logs its arguments to the returned file."""
    for name, value in SLURM_JOB.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "scontrol.log"
    (bin_dir / "scontrol").write_text(FAKE_SCONTROL.format(log=log))
    (bin_dir / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def test_slurm_requeue_continues_the_same_run_in_its_own_folder_and_ends_exact(
    tmp_path, slurm_job, uninterrupted
) -> None:
    config, whole = uninterrupted
    root = tmp_path / "runs"
    # SIGUSR1 (SLURM's warning before the time limit): Lightning writes hpc_ckpt_1.ckpt and requeues
    # the job; the requeue cancels it with SIGTERM
    with pytest.raises(SystemExit) as stopped:
        main(fit_args(config, root, signal_at("on_train_batch_end", 5, signal.SIGUSR1)))
    assert stopped.value.code == 143
    assert slurm_job.read_text() == "requeue 4242\n"
    run_dir = root / "lightning_logs" / "version_4242"
    assert torch.load(root / "hpc_ckpt_1.ckpt", weights_only=True)["global_step"] == 5
    assert last_state(run_dir)["global_step"] == 5

    main(fit_args(config, root))  # the requeued job: same job ID, no --ckpt_path
    assert [p.name for p in (root / "lightning_logs").iterdir()] == ["version_4242"]
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2  # both jobs' events, one folder
    assert_same_training_state(last_state(run_dir), whole)


def test_under_slurm_every_logger_without_a_version_takes_the_jobs_folder(tmp_path, slurm_job) -> None:
    loggers = [TensorBoardLogger(tmp_path), CSVLogger(tmp_path), TensorBoardLogger(tmp_path, version="mine")]
    reserve_run_folder(loggers)
    assert [logger.log_dir for logger in loggers] == [
        str(tmp_path / "lightning_logs" / "version_4242"),
        str(tmp_path / "lightning_logs" / "version_4242"),
        str(tmp_path / "lightning_logs" / "mine"),
    ]


class _Payload:
    """Unpickles as a call of os.getcwd: code a crafted checkpoint would run."""

    def __reduce__(self):
        return (os.getcwd, ())


def _pickled_object(path: Path, whole: dict) -> None:
    torch.save({**whole, "payload": _Payload()}, path)


def _not_a_checkpoint(path: Path, whole: dict) -> None:
    path.write_text("not a checkpoint\n")


def _another_jobs(path: Path, whole: dict) -> None:
    torch.save(whole, path)  # its checkpoints went to .../version_0/checkpoints


def _another_model(path: Path, whole: dict) -> None:
    hparams = dict(whole["hyper_parameters"], hidden_sizes=[32])
    callbacks = {
        key: {**state, "dirpath": str(path.parent / "lightning_logs" / "version_4242" / "checkpoints")}
        if isinstance(state, dict) and "dirpath" in state
        else state
        for key, state in whole["callbacks"].items()
    }
    torch.save({**whole, "hyper_parameters": hparams, "callbacks": callbacks}, path)


@pytest.mark.parametrize(
    ("write", "fragments"),
    [
        (_pickled_object, ("holds a pickled Python object (posix.getcwd) that safe loading",)),
        (_not_a_checkpoint, ("is not a torch checkpoint file (a file that torch.save writes); it is the SLURM "
         "requeue checkpoint that fit resumes from under SLURM (remove it, or pass --ckpt_path, to start otherwise)",)),
        (_another_jobs, ("was written by another run (version_0: its checkpoints are in ", "), not by this SLURM "
         "job's (version_4242), and fit under SLURM resumes from it; remove it, give each job its own "
         "--trainer.default_root_dir, or pass --ckpt_path")),
        (_another_model, ("was trained with a different model: model.init_args.hidden_sizes=[32] in the checkpoint",)),
    ],
    ids=["pickled-object", "not-a-checkpoint", "another-jobs-run", "another-model"],
)  # fmt: skip
def test_a_bad_hpc_checkpoint_is_refused_in_one_line_before_anything_is_written(
    tmp_path, capsys, slurm_job, uninterrupted, write, fragments
) -> None:
    config, whole = uninterrupted
    root = tmp_path / "runs"
    root.mkdir()
    hpc = root / "hpc_ckpt_3.ckpt"
    write(hpc, whole)
    (root / "hpc_ckpt_1.ckpt").write_text("an older one: Lightning resumes from the highest number\n")
    with pytest.raises(SystemExit) as refused:
        main(fit_args(config, root))
    assert refused.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lit-dl: error: checkpoint '{hpc}' "), line
    assert all(fragment in line for fragment in fragments), line
    assert sorted(p.name for p in root.iterdir()) == ["hpc_ckpt_1.ckpt", "hpc_ckpt_3.ckpt"]
