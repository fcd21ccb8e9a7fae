"""The CLI with a downstream project's plain LightningDataModule (tests/downstream/plain_data.py):
fit without a test split, export of a data module whose statistics are set in setup."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from lit_dl.cli import main
from lit_dl.cli.export import default_output
from tests.downstream.plain_data import PlainDataModule


def plain_recipe(tmp_path: Path, data_class: str) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(tmp_path / "runs"),
        },
        "model": {
            "class_path": "lit_dl.models.MLPClassifier",
            "init_args": {"num_classes": 3, "in_features": 16, "hidden_sizes": [8]},
        },
        "data": {"class_path": f"tests.downstream.plain_data.{data_class}"},
    }
    path = tmp_path / "plain.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_fit_without_a_test_split_succeeds_and_says_the_test_was_skipped(tmp_path, caplog):
    with caplog.at_level("INFO"):
        main(["fit", "--config", str(plain_recipe(tmp_path, "NoTestSplitDataModule"))])  # no SystemExit
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert skipped == [
        "Test after fit skipped: the data module NoTestSplitDataModule has no test split (no "
        "test_dataloader) (--test_after_fit false silences this)"
    ]
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    assert (run / "checkpoints").is_dir() and (run / "config.yaml").is_file()


def test_export_sets_up_a_data_module_whose_statistics_come_from_setup(tmp_path):
    main(["fit", "--config", str(plain_recipe(tmp_path, "PlainDataModule")), "--test_after_fit=false"])
    run = tmp_path / "runs" / "lightning_logs" / "version_0"
    (ckpt,) = (run / "checkpoints").glob("*.ckpt")
    main(["export", "--config", str(run / "config.yaml"), "--ckpt_path", str(ckpt), "--format", "state_dict"])
    exported = torch.load(default_output(ckpt, "state_dict"), weights_only=True)
    data = PlainDataModule()
    data.setup()
    assert torch.equal(exported["mean"], data.mean) and torch.equal(exported["std"], data.std)
