"""The `lit-dl` command as a user runs it: run folders, fit-then-test, checkpoints, bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import LitDLCLI, main
from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO, read_scalars


def fit_args(config: Path, root: Path, *extra: str) -> list[str]:
    return ["fit", "--config", str(config), f"--trainer.default_root_dir={root}", *extra]


def test_fit_writes_one_run_folder_and_tests_the_best_checkpoint(tiny_config, tmp_path, monkeypatch, capsys):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    root = tmp_path / "runs"
    main(fit_args(tiny_config, root))
    out = capsys.readouterr().out
    assert out.count("test/acc") == 1 and "test/f1" in out and "test/loss" in out
    run = root / "lightning_logs" / "version_0"
    assert sorted(p.name for p in run.iterdir() if not p.name.startswith("events")) == [
        "checkpoints",
        "config.yaml",
        "hparams.yaml",
    ]
    assert len(list((run / "checkpoints").glob("epoch=*.ckpt"))) == 1
    tags = set(read_scalars(run))
    assert {"train/loss", "val/loss", "val/acc", "val/f1", "test/acc", "test/f1", "test/loss"} <= tags
    assert list(cwd.iterdir()) == []  # nothing written to the current directory

    # the same command again: a new version, no "config.yaml exists" failure
    main(fit_args(tiny_config, root, "--test_after_fit=false"))
    assert "test/acc" not in capsys.readouterr().out
    assert sorted(p.name for p in (root / "lightning_logs").iterdir()) == ["version_0", "version_1"]


def test_test_subcommand_reproduces_the_accuracy_printed_after_fit(tiny_config, tmp_path):
    root = tmp_path / "runs"
    fitted = LitDLCLI(args=fit_args(tiny_config, root))
    best = fitted.trainer.checkpoint_callback.best_model_path
    tested = LitDLCLI(
        args=[
            "test",
            "--config",
            str(tiny_config),
            f"--trainer.default_root_dir={root}",
            f"--ckpt_path={best}",
        ]
    )
    for key in ("test/acc", "test/f1", "test/loss"):
        assert tested.trainer.callback_metrics[key] == fitted.trainer.callback_metrics[key]


def test_config_files_compose_left_to_right(tiny_config, tmp_path):
    cli = LitDLCLI(
        args=[
            "--config",
            str(tiny_config),
            "--config",
            str(CONFIGS / "optimizer" / "nesterov.yaml"),
            "--config",
            str(CONFIGS / "lr_scheduler" / "step.yaml"),
            "--model.init_args.optimizer.init_args.lr=0.02",
        ],
        run=False,
    )
    model_cfg = cli.config.model.init_args
    assert model_cfg.optimizer.class_path == "torch.optim.SGD"
    assert model_cfg.optimizer.init_args.lr == 0.02  # the command line wins over both files
    assert model_cfg.optimizer.init_args.nesterov is True
    assert model_cfg.lr_scheduler.class_path == "lit_dl.optim.WarmupStepLR"
    assert model_cfg.hidden_sizes == [16]  # untouched values of the recipe survive


def test_unknown_optimizer_message_lists_the_valid_classes(tiny_config, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(fit_args(tiny_config, tmp_path, "--model.init_args.optimizer.class_path=torch.optim.Adamm"))
    err = capsys.readouterr().err
    assert "valid classes in torch.optim: " in err
    assert err.count("valid classes in torch.optim") == 1
    for name in ("SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW"):
        assert f" {name}," in err or f" {name}\n" in err
    assert "Given value" not in err


def test_console_script_and_module_entry_points(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for command in (
        [sys.executable, "-m", "lit_dl", "--help"],
        [Path(sys.executable).with_name("lit-dl"), "--help"],
    ):
        if not Path(command[0]).exists():
            continue
        result = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=HANG_TIMEOUT
        )
        assert result.returncode == 0, result.stderr
        assert "{fit,validate,test,predict}" in result.stdout
        # lit_dl's own subcommands, which Lightning's parser does not know, are listed after its own
        lines = result.stdout.splitlines()
        more = lines.index("More subcommands (`lit-dl <name> --help`):")
        assert [line.split()[0] for line in lines[more + 1 :]] == ["doctor", "export", "sweep"]


def test_model_help_documents_recipe_and_task_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.help", "lit_dl.models.MLPClassifier"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    # the recipe's own arguments and the task base's, reached through **kwargs, with their docs
    for option in (
        "--model.hidden_sizes",
        "--model.norm {before,after,none}",
        "--model.l1",
        "--model.optimizer",
    ):
        assert option in out
    assert "Width of each hidden block." in out


def test_saved_config_reruns_the_same_recipe(tiny_config, tmp_path):
    root = tmp_path / "runs"
    LitDLCLI(args=fit_args(tiny_config, root, "--test_after_fit=false"))
    saved = root / "lightning_logs" / "version_0" / "config.yaml"
    config = yaml.safe_load(saved.read_text())
    assert config["model"]["init_args"]["hidden_sizes"] == [16]
    again = LitDLCLI(args=["fit", "--config", str(saved), "--test_after_fit=false"])
    assert again.trainer.log_dir == str(root / "lightning_logs" / "version_1")


def test_predict_saves_class_probabilities_in_the_run_folder(tiny_config, tmp_path):
    root = tmp_path / "runs"
    fitted = LitDLCLI(args=fit_args(tiny_config, root, "--test_after_fit=false"))
    best = fitted.trainer.checkpoint_callback.best_model_path
    LitDLCLI(
        args=[
            "predict",
            "--config",
            str(tiny_config),
            f"--trainer.default_root_dir={root}",
            f"--ckpt_path={best}",
        ]
    )
    saved = torch.load(root / "lightning_logs" / "version_1" / "predictions.pt")
    probs = saved["probabilities"]
    assert probs.shape == (64, 3)  # the synthetic test split, in order
    assert torch.equal(saved["index"], torch.arange(64))
    assert torch.equal(saved["predicted_class"], probs.argmax(1))
    assert torch.allclose(probs.sum(-1), torch.ones(64))
    x_test = fitted.datamodule.test_set.tensors[0]
    expected = torch.softmax(type(fitted.model).load_from_checkpoint(best).eval()(x_test), -1)
    assert torch.allclose(probs, expected, atol=1e-6)
