"""End-to-end checks of the README's promises: the default recipe's accuracy (DDP on CPU: tests/distributed/)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO


def run_cli(args, cwd, timeout=HANG_TIMEOUT):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lit_dl", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def test_default_recipe_reaches_96_percent_and_test_reproduces_it(tmp_path):
    fit = run_cli(
        ["fit", "--config", str(CONFIGS / "digits_mlp.yaml"), "--trainer.enable_progress_bar=false"],
        cwd=tmp_path,
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    acc = float(re.search(r"test/acc[\s│]+([0-9.]+)", fit.stdout).group(1))
    # seeds 0-4 give 0.964-0.981 (README); seed 0, the recipe's, gives 0.967
    assert acc >= 0.96
    (ckpt,) = (tmp_path / "lightning_logs" / "version_0" / "checkpoints").glob("epoch=*.ckpt")  # the best
    test = run_cli(
        ["test", "--config", str(CONFIGS / "digits_mlp.yaml"), f"--ckpt_path={ckpt}"], cwd=tmp_path
    )
    assert test.returncode == 0, test.stderr[-3000:]
    assert float(re.search(r"test/acc[\s│]+([0-9.]+)", test.stdout).group(1)) == acc
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lightning_logs"]
