"""A downstream project's plain LightningDataModule (tests/downstream/plain_data.py) is evaluated exactly
under DDP too: lit_dl's CLI shards its map-style test split like its own data modules
(lit_dl.data.exact_eval), where Lightning's DistributedSampler would pad 225 samples to 226."""

from __future__ import annotations

import subprocess
import sys

import yaml

from lit_dl.cli import LitDLCLI, main
from tests.conftest import HANG_TIMEOUT, read_scalars
from tests.distributed.test_multi_process import DDP_WARNINGS, env, one_thread  # noqa: F401


def test_plain_data_module_test_metrics_on_two_processes_equal_one_process(tmp_path, one_thread):  # noqa: F811
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "enable_progress_bar": False, "enable_model_summary": False},
        "model": {
            "class_path": "lit_dl.models.MLPClassifier",
            "init_args": {"num_classes": 3, "in_features": 16, "hidden_sizes": [8]},
        },
        # 225 test samples in batches of 16: 15 batches, 8 on rank 0 and 7 on rank 1
        "data": {"class_path": "tests.downstream.plain_data.PlainDataModule", "init_args": {"num_test": 225}},
    }
    recipe = tmp_path / "plain.yaml"
    recipe.write_text(yaml.safe_dump(config))
    common = ["--config", str(recipe)]
    main(["fit", *common, f"--trainer.default_root_dir={tmp_path / 'fit'}", "--trainer.max_steps=3"])
    (ckpt,) = (tmp_path / "fit" / "lightning_logs" / "version_0" / "checkpoints").glob("*.ckpt")

    two = tmp_path / "two"
    args = ["test", *common, f"--trainer.default_root_dir={two}", f"--ckpt_path={ckpt}"]
    result = subprocess.run(
        [sys.executable, "-m", "lit_dl", *args, "--trainer.devices=2", "--trainer.strategy=ddp"],
        capture_output=True,
        text=True,
        env=env(),
        cwd=tmp_path,
        timeout=HANG_TIMEOUT,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert [w for w in DDP_WARNINGS if w in output] == []  # no "replicates some samples"
    logged = read_scalars(two / "lightning_logs" / "version_0")

    one = LitDLCLI(
        args=["test", *common, f"--trainer.default_root_dir={tmp_path / 'one'}", f"--ckpt_path={ckpt}"]
    )
    expected = one.trainer.callback_metrics
    assert sorted(expected) == ["test/acc", "test/f1", "test/loss"]
    for name, value in expected.items():
        ((_, on_two),) = logged[name]
        assert on_two == value.item(), name  # float32 both: exact
