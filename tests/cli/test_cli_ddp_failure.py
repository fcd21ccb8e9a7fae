"""A config error found at setup under DDP: every rank exits 2, one message, no second traceback, no run folder."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import HANG_TIMEOUT, REPO

# Lightning's DDP launcher starts rank 1 by re-running this script with the same arguments; each
# process records how it exited.
RUNNER = """
import os, sys
from pathlib import Path
from lit_dl.cli import main

code = 0
try:
    main()
except SystemExit as exit:
    code = exit.code
    raise
finally:
    rank = os.environ.get("LOCAL_RANK", "0")
    Path(sys.argv[0]).with_name(f"exit_rank{rank}").write_text(str(code))
"""


def test_setup_error_under_ddp_exits_2_on_every_rank_with_one_message_and_no_run_folder(
    tiny_config, tmp_path
):
    runner = tmp_path / "run_lit_dl.py"
    runner.write_text(RUNNER)
    root = tmp_path / "runs"
    command = [
        sys.executable,
        str(runner),
        "fit",
        "--config",
        str(tiny_config),
        f"--trainer.default_root_dir={root}",
        "--trainer.accelerator=cpu",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        "--model.init_args.num_classes=2",  # the data have 3 classes: found in setup, on every rank
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HANG_TIMEOUT
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert (tmp_path / "exit_rank0").read_text() == "2"
    assert (tmp_path / "exit_rank1").read_text() == "2"
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "lit-dl: error: model num_classes=2 is smaller than the 3 classes in the data "
        "(SyntheticClassificationDataModule has labels 0..2); set model.init_args.num_classes to at least 3"
    ], output
    assert "Traceback" not in output
    assert "Connection closed by peer" not in output
    assert not root.exists()
