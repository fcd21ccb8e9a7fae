"""`lit-dl sweep` workers that share a study: processes started at once run different trials (SQLite
file and a real PostgreSQL server), and a worker killed mid-trial leaves a study the next command resumes."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
import yaml

from lit_dl.cli import main
from lit_dl.sweep import TRIAL_FILE
from tests.conftest import CONFIGS, REPO

DIGITS = str(CONFIGS / "digits_mlp.yaml")
LR_WD = str(CONFIGS / "sweeps/lr_wd.yaml")
FAST = [
    "--trainer.max_epochs",
    "2",
    "--trainer.limit_train_batches",
    "3",
    "--model.init_args.hidden_sizes",
    "[32]",
]
COMPLETE = optuna.trial.TrialState.COMPLETE


def _worker(sweep_dir: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "lit_dl", "sweep", "--config", DIGITS, "--sweep", LR_WD]
    argv += ["--sweep_dir", str(sweep_dir), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server of its own: initdb in a temporary folder, on a free loopback port."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are absent: apt-get install postgresql")
    prefix: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="lit_dl_pg_"))
    if prefix:
        shutil.chown(root, "postgres")
    data = root / "data"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
def test_two_workers_started_at_once_run_different_trials_of_one_study(tmp_path, request, storage):
    sweep_dir = tmp_path / "lr_wd"
    url = request.getfixturevalue("postgres_url") if storage == "postgresql" else None
    extra = ["--n_trials", "4", "--worker_trials", "2", *FAST]
    if url:
        extra += ["--storage", url, "--study_name", f"two_workers_{os.getpid()}"]
    workers = [_worker(sweep_dir, *extra) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(outputs)
    study = optuna.load_study(
        study_name=f"two_workers_{os.getpid()}" if url else "lr_wd",
        storage=url or f"sqlite:///{sweep_dir / 'study.db'}",
    )
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state == COMPLETE for t in trials)
    by_worker: dict[str, list[int]] = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
        record = yaml.safe_load((sweep_dir / t.user_attrs["run_folder"] / TRIAL_FILE).read_text())
        assert (record["trial"], record["worker"], record["best"]) == (
            t.number,
            t.user_attrs["worker"],
            t.value,
        )
    assert sorted(len(numbers) for numbers in by_worker.values()) == [2, 2]  # disjoint, two each
    assert {w.pid for w in workers} == {int(name.rsplit(":", 1)[1]) for name in by_worker}


def test_a_worker_killed_mid_trial_leaves_a_study_the_next_command_resumes(tmp_path, capsys):
    sweep_dir = tmp_path / "lr_wd"
    args = ["--n_trials", "2", "--heartbeat_interval", "1", *FAST, "--trainer.max_epochs", "30"]
    worker = _worker(sweep_dir, *args)
    config = sweep_dir / "trial_0000/lightning_logs/version_0/config.yaml"
    deadline = time.monotonic() + 300
    while not config.is_file() and worker.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert config.is_file(), worker.communicate()[0]
    worker.send_signal(signal.SIGKILL)  # mid-trial: training has started, 30 epochs to go
    worker.wait()
    time.sleep(3)  # the killed trial's heartbeat is stale after 2 x 1 s

    main(
        [
            "sweep",
            "--config",
            DIGITS,
            "--sweep",
            LR_WD,
            "--sweep_dir",
            str(sweep_dir),
            *args,
            "--trainer.max_epochs",
            "2",
        ]
    )
    study = optuna.load_study(study_name="lr_wd", storage=f"sqlite:///{sweep_dir / 'study.db'}")
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL, COMPLETE, COMPLETE]
    assert trials[1].params == trials[0].params  # the killed trial, run again
    assert not (config.parent / TRIAL_FILE).exists()
    out = capsys.readouterr().out
    assert "2 complete, 1 fail" in out
