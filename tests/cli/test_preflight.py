"""A torchvision built for another torch (simulated: a package on sys.path whose import fails as such a
build's does) makes every command print one line naming both versions and the fix, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import HANG_TIMEOUT, REPO


@pytest.fixture
def broken_torchvision(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "torchvision").mkdir(parents=True)
    # what a CUDA or older build raises beside this torch, from its first import
    (site / "torchvision" / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n'
    )
    (site / "torchvision-0.99.0.dist-info").mkdir()
    (site / "torchvision-0.99.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: torchvision\nVersion: 0.99.0\n"
    )
    return site


@pytest.mark.parametrize("command", [["fit", "--config", "lit_dl://digits_mlp.yaml"], ["--help"]])
def test_an_unusable_torchvision_stops_every_command_with_one_line(broken_torchvision, tmp_path, command):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken_torchvision), str(REPO)])}
    run = subprocess.run(
        [sys.executable, "-m", "lit_dl", *command],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=HANG_TIMEOUT,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    minor = int(torch.__version__.split(".")[1])
    index = " --index-url https://download.pytorch.org/whl/cpu" if "+cpu" in torch.__version__ else ""
    assert run.stderr.splitlines() == [
        f"lit-dl: error: torchvision 0.99.0 cannot be imported beside torch {torch.__version__} "
        "(RuntimeError: operator torchvision::nms does not exist): it was built for another torch, and "
        "torchmetrics imports it whenever it is installed; install the build for this torch "
        f"(pip install 'torchvision==0.{minor + 15}.*'{index}) or remove it (pip uninstall torchvision; "
        "only MNIST/CIFAR downloads need it)"
    ]
    assert list(tmp_path.iterdir()) == [broken_torchvision]  # nothing written
