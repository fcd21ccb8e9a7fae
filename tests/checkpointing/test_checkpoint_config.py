"""A checkpoint never rewrites the config: differing model arguments are an error unless opted in;
the optimizer and LR scheduler always come from the config."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.checkpointing.model_differences import checkpoint_model_differences
from lit_dl.cli import LitDLCLI, main


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny recipe (hidden_sizes [256, 256]) and a checkpoint of the same recipe trained with [32]."""
    folder = tmp_path_factory.mktemp("ckpt_rule")
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 1,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 1,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "default_root_dir": str(folder / "runs"),
        },
        "model": {
            "class_path": "lit_dl.models.MLPClassifier",
            "init_args": {"num_classes": 3, "in_features": 16, "hidden_sizes": [256, 256]},
        },
        "data": {
            "class_path": "lit_dl.data.SyntheticClassificationDataModule",
            "init_args": {"num_classes": 3, "num_features": 16, "num_train": 64, "batch_size": 32},
        },
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = LitDLCLI(
        args=["fit", "--config", str(path), "--model.init_args.hidden_sizes=[32]", "--test_after_fit=false"]
    )
    return path, Path(cli.trainer.checkpoint_callback.best_model_path)


def test_checkpoint_with_other_model_arguments_is_an_error_naming_each(trained, tmp_path, capsys):
    config, ckpt = trained
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--config", str(config), f"--ckpt_path={ckpt}", "--model.init_args.dropout=0.5"])
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"lit-dl: error: checkpoint {str(ckpt)!r} was trained with a different model: ")
    assert "model.init_args.hidden_sizes=[32] in the checkpoint, [256, 256] in the config" in line
    assert "model.init_args.dropout=0.0 in the checkpoint, 0.5 in the config" in line
    assert "--model_from_ckpt=true" in line


def test_model_from_ckpt_builds_the_checkpoint_model(trained):
    config, ckpt = trained
    cli = LitDLCLI(args=["test", "--config", str(config), f"--ckpt_path={ckpt}", "--model_from_ckpt=true"])
    assert list(cli.model.hparams.hidden_sizes) == [32]
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, tensor in cli.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_matching_config_tests_the_checkpoint(trained):
    config, ckpt = trained
    cli = LitDLCLI(
        args=["test", "--config", str(config), f"--ckpt_path={ckpt}", "--model.init_args.hidden_sizes=[32]"]
    )
    assert list(cli.model.hparams.hidden_sizes) == [32]
    assert "test/acc" in cli.trainer.callback_metrics


@pytest.mark.parametrize("opt_in", [False, True], ids=["matching-config", "model-from-ckpt"])
def test_optimizer_and_scheduler_never_come_from_a_checkpoint(trained, tmp_path, opt_in):
    config, ckpt = trained
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["optimizer"] = {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.5}}
    checkpoint["hyper_parameters"]["lr_scheduler"] = {
        "class_path": "torch.optim.lr_scheduler.StepLR",
        "init_args": {"step_size": 1},
    }
    carrying = tmp_path / "with_optimizer.ckpt"
    torch.save(checkpoint, carrying)
    cli = LitDLCLI(
        args=[
            "validate",
            "--config",
            str(config),
            f"--ckpt_path={carrying}",
            "--model.init_args.hidden_sizes=[32]",
            "--model.init_args.optimizer=torch.optim.RMSprop",
            f"--model_from_ckpt={str(opt_in).lower()}",
        ]
    )
    optimizer = cli.model.optimizer_factory(cli.model.parameter_groups())
    assert type(optimizer) is torch.optim.RMSprop
    assert cli.model.lr_scheduler_factory is None
    assert "optimizer" not in cli.model.hparams and "lr_scheduler" not in cli.model.hparams


def test_differences_cover_class_path_and_unknown_arguments():
    hparams = {
        "_class_path": "pkg.Other",
        "_instantiator": "x",
        "width": 3,
        "optimizer": {"class_path": "SGD"},
    }
    config = {"class_path": "pkg.Model", "init_args": {"depth": 2}}
    assert checkpoint_model_differences(hparams, config) == [
        ("model.class_path", "pkg.Other", "pkg.Model"),
        ("model.init_args.width", 3, ...),
    ]
    same = {"_class_path": "pkg.Model", "depth": (2,), "optimizer": "ignored"}
    assert checkpoint_model_differences(same, {"class_path": "pkg.Model", "init_args": {"depth": [2]}}) == []


def test_the_schedules_interval_and_the_lr_scaling_are_the_configs_not_a_model_difference():
    hparams = {"_class_path": "pkg.Model", "depth": 2, "scheduler_interval": "epoch", "lr_scaling": "none"}
    hparams["base_batch_size"] = 256
    config = {
        "class_path": "pkg.Model",
        "init_args": {
            "depth": 2,
            "scheduler_interval": "step",
            "lr_scaling": "linear",
            "base_batch_size": 64,
        },
    }
    assert checkpoint_model_differences(hparams, config) == []
