"""The default recipe's console output holds no warning the user cannot act on."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from lit_dl.cli import main
from lit_dl.cli.console import QUIET_LOG_PREFIXES, QUIET_WARNINGS
from tests.conftest import HANG_TIMEOUT, REPO

# What Lightning prints on these commands without lit_dl's filters (lightning 2.6.6, torch 2.13).
UNACTIONABLE = ("💡 Tip", "litlogger", "LeafSpec", "The dirpath has changed", "log_momentum")
# A Python warning as printed: "<file>.py:<line>: <message>".
WARNING_LINE = re.compile(r"\.py:\d+: ")


def lit_dl(cwd, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "lit_dl", *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=HANG_TIMEOUT)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def test_default_recipe_fit_and_test_print_no_unactionable_warning(tmp_path):
    # From a folder without configs/: the shipped recipe is found by name, as in a pip-installed project.
    common = ["--config", "configs/digits_mlp.yaml", "--trainer.enable_progress_bar=false"]
    fit = lit_dl(tmp_path, "fit", *common, "--trainer.max_epochs=1")
    run = tmp_path / "lightning_logs" / "version_0"
    (ckpt,) = (run / "checkpoints").glob("epoch=*.ckpt")  # the best (last.ckpt beside it)
    test = lit_dl(tmp_path, "test", *common, f"--ckpt_path={ckpt}")
    for output in (fit, test):
        assert "test/acc" in output
        for text in UNACTIONABLE:
            assert text not in output
        assert not WARNING_LINE.search(output), output


def test_a_config_without_callbacks_prints_no_litmodels_tip(tiny_config, tmp_path, capsys, caplog):
    # Without a checkpoint callback Lightning adds its default ModelCheckpoint and advertises litmodels.
    # In-process, Lightning's log lines reach pytest's log capture (the root logger has its handler).
    config = yaml.safe_load(tiny_config.read_text())
    del config["trainer"]["callbacks"]
    no_callbacks = tmp_path / "no_callbacks.yaml"
    no_callbacks.write_text(yaml.safe_dump(config))
    root = tmp_path / "runs"
    main(
        ["fit", "--config", str(no_callbacks), f"--trainer.default_root_dir={root}", "--trainer.max_epochs=1"]
    )
    output = "".join(capsys.readouterr()) + caplog.text
    assert "test/acc" in output and "GPU available" in caplog.text
    assert "💡 Tip" not in output and "litmodels" not in output
    assert list((root / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt"))


def test_filters_are_scoped_to_one_message_and_module():
    for message, category, module in QUIET_WARNINGS:
        assert message and module.startswith(r"lightning\.")
        assert category is not Warning
    assert all(prefix.strip() for prefix in QUIET_LOG_PREFIXES)
