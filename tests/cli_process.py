"""``lit-dl`` commands in a separate process that starts in milliseconds, for tests where the process
is the point (``kill -9``, signals, exit statuses) and there are many of them.

A fresh ``python -m lit_dl`` spends about 4 s of CPU importing torch and Lightning before it trains a
step; ten kill-and-resume restarts spend most of their time there. These processes are forked from a
server (multiprocessing's ``forkserver``) that imported lit_dl's CLI once and has run nothing else: each
child is a clean interpreter state with the imports already done, and no thread pool of the test
process is copied into it (the server is started with ``exec``, not forked from pytest).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["lit_dl.cli", "tests.probe_callbacks"])


def _run_cli(args: list[str], log: str, env: dict[str, str] | None) -> None:
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.argv = ["lit-dl", *args]
    # A fresh `lit-dl` process starts the platform's default kind of process (DataLoader workers, DDP
    # helpers), not the forkserver its parent chose for it: children it forks die with it.
    multiprocessing.set_start_method(None, force=True)
    from lit_dl.cli import main

    main(args)  # SystemExit(code) becomes the exit code; an exception prints its traceback, exit 1


def start_cli(
    args: Sequence[str], log: Path, env: Mapping[str, str] | None = None
) -> multiprocessing.Process:
    """Start ``lit-dl <args>`` in a child process whose stdout and stderr go to ``log``.

    The child's ``exitcode`` is what ``lit-dl``'s would be (``-9`` after ``kill()``). ``env``, when
    given, replaces the child's environment (the server's is the test process's at its first use).
    """
    process = _CONTEXT.Process(
        target=_run_cli, args=([str(a) for a in args], str(log), None if env is None else dict(env))
    )
    process.start()
    return process


def kill_at_marker(process: multiprocessing.Process, marker: Path, log: Path, what: str) -> None:
    """SIGKILL ``process`` once it has written ``marker`` (a test callback's stall point); fail with the
    tail of its ``log`` if it exits first, or if it never gets there within the hang timeout."""
    from tests.conftest import HANG_TIMEOUT

    try:
        process.join(timeout=0)
        deadline = time.monotonic() + HANG_TIMEOUT
        while not marker.exists():
            assert process.is_alive(), f"{what}: exit {process.exitcode}\n{log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"{what}: never got there"
            time.sleep(0.05)
        process.kill()
        process.join(30)
        assert process.exitcode == -signal.SIGKILL
    finally:
        if process.is_alive():
            process.kill()
            process.join(30)
