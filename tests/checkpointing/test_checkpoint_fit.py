"""A checkpoint's content against the model and optimizer the config builds: what loads, what is
refused, and a checkpoint plain Lightning wrote for the same recipe class."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from lit_dl.checkpointing.checkpoint_fit import check_optimizer_state_fits, state_dict_differences
from lit_dl.cli import LitDLCLI
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.errors import ConfigError
from lit_dl.models import MLPClassifier
from tests.conftest import quiet_trainer, tiny_recipe


def _params() -> list[dict]:
    return [
        {"params": [nn.Parameter(torch.zeros(2, 2)), nn.Parameter(torch.zeros(2))], "name": "decay"},
        {"params": [nn.Parameter(torch.zeros(3))], "name": "no_decay", "weight_decay": 0.0},
    ]


def _trained_state(cls: type[torch.optim.Optimizer], **kwargs) -> dict:
    optimizer = cls(_params(), lr=0.1, **kwargs)
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = torch.ones_like(p)
    optimizer.step()
    return optimizer.state_dict()


@pytest.mark.parametrize(
    ("saved", "configured"),
    [
        (torch.optim.AdamW, torch.optim.AdamW),
        # another class is no layout difference: the resume rule starts its state afresh
        (torch.optim.AdamW, torch.optim.SGD),
    ],
    ids=["same-class", "another-class"],
)
def test_optimizer_state_of_the_same_group_layout_fits(saved, configured):
    check_optimizer_state_fits(_trained_state(saved), configured(_params(), lr=0.1), "run.ckpt")


def test_another_layout_of_parameter_groups_is_refused_naming_both():
    state = _trained_state(torch.optim.SGD)
    one_group = torch.optim.SGD([p for g in _params() for p in g["params"]], lr=0.1)
    with pytest.raises(ConfigError) as error:
        check_optimizer_state_fits(state, one_group, "run.ckpt")
    assert str(error.value) == (
        "checkpoint 'run.ckpt' holds optimizer state for 2 parameter group(s) of [2, 1] parameters, the "
        "config's SGD has 1 of [3]: the model's parameter groups differ; resume with the config it was "
        "trained with (its run's config.yaml), or start a new run from its weights with "
        "--model.init_args.init_from=run.ckpt"
    )


def test_state_dict_differences_name_missing_unexpected_and_reshaped_entries():
    own = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1)}
    state = {"a": torch.zeros(4), "b": torch.zeros(3), "d": torch.zeros(1), "m._extra_state": b"x"}
    assert state_dict_differences(state, own) == [
        "it has no c, which the model needs",
        "it has d, which the model does not",
        "a has shape [4] in the checkpoint, [2] in the model",
    ]
    # strict=False (a module's strict_loading) loads what matches: only the shapes must agree
    assert state_dict_differences(state, own, strict=False) == [
        "a has shape [4] in the checkpoint, [2] in the model"
    ]
    assert state_dict_differences(own, own) == []


@pytest.fixture(scope="module")
def plain_lightning_run(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny recipe, and the checkpoint that a plain ``Trainer.fit`` of the same MLPClassifier wrote
    (its hyper-parameters without lit-dl's ``_class_path``; ``in_features`` among them)."""
    folder = tmp_path_factory.mktemp("plain_lightning")
    recipe = tiny_recipe()
    recipe["trainer"]["max_epochs"] = 1
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(recipe))
    init = recipe["model"]["init_args"]
    model = MLPClassifier(
        num_classes=init["num_classes"], in_features=init["in_features"], hidden_sizes=init["hidden_sizes"]
    )
    data = SyntheticClassificationDataModule(**recipe["data"]["init_args"])
    trainer = quiet_trainer(folder, max_epochs=1)
    trainer.fit(model, data)
    ckpt = folder / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    hparams = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert "_class_path" not in hparams and hparams["in_features"] == 16
    return config, ckpt


@pytest.mark.parametrize("subcommand", ["test", "validate"])
def test_a_checkpoint_plain_lightning_wrote_for_the_same_class_is_evaluated(
    plain_lightning_run, tmp_path, subcommand
):
    config, ckpt = plain_lightning_run
    cli = LitDLCLI(
        args=[
            subcommand,
            "--config",
            str(config),
            f"--ckpt_path={ckpt}",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert cli.model.state_dict().keys() == state.keys()
    for name, tensor in cli.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    assert f"{subcommand if subcommand == 'test' else 'val'}/acc" in cli.trainer.callback_metrics


def test_fit_resumes_from_a_checkpoint_plain_lightning_wrote_for_the_same_class(
    plain_lightning_run, tmp_path
):
    config, ckpt = plain_lightning_run
    cli = LitDLCLI(
        args=[
            "fit",
            "--config",
            str(config),
            f"--ckpt_path={ckpt}",
            "--trainer.max_epochs=2",
            "--test_after_fit=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    saved = torch.load(ckpt, weights_only=True)
    assert cli.trainer.current_epoch == 2
    assert cli.trainer.global_step == 2 * saved["global_step"]  # one epoch trained on top of the first


def test_model_from_ckpt_builds_the_plain_lightning_checkpoints_model(plain_lightning_run, tmp_path):
    config, _ = plain_lightning_run
    recipe = yaml.safe_load(config.read_text())
    init = recipe["model"]["init_args"]
    model = MLPClassifier(
        num_classes=init["num_classes"], in_features=init["in_features"], hidden_sizes=[8, 4]
    )
    trainer = quiet_trainer(tmp_path, max_steps=1)
    trainer.fit(model, SyntheticClassificationDataModule(**recipe["data"]["init_args"]))
    ckpt = tmp_path / "wider.ckpt"
    trainer.save_checkpoint(ckpt)
    cli = LitDLCLI(
        args=[
            "test",
            "--config",
            str(config),
            f"--ckpt_path={ckpt}",
            "--model_from_ckpt=true",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    assert type(cli.model) is MLPClassifier
    assert list(cli.model.hparams.hidden_sizes) == [8, 4]
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, tensor in cli.model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_fit_resumes_an_adamw_checkpoint_with_sgd_starting_its_state_afresh(
    plain_lightning_run, tmp_path, caplog
):
    """``optimizer/sgd.yaml`` on an AdamW run's checkpoint (a KeyError 'momentum' in the first step
    before the resume rule): SGD trains from the checkpoint's weights, without AdamW's moments."""
    config, _ = plain_lightning_run
    common = ["--config", str(config), "--test_after_fit=false", f"--trainer.default_root_dir={tmp_path}"]
    first = LitDLCLI(args=["fit", *common])
    ckpt = first.trainer.checkpoint_callback.best_model_path
    with caplog.at_level("INFO"):
        cli = LitDLCLI(
            args=[
                "fit",
                *common,
                "--config=lit_dl://optimizer/sgd.yaml",
                f"--ckpt_path={ckpt}",
                "--trainer.max_epochs=2",
            ]
        )
    (optimizer,) = cli.trainer.optimizers
    assert type(optimizer) is torch.optim.SGD
    assert {"momentum", "dampening", "nesterov"} <= set(optimizer.param_groups[0])
    assert all(set(state) <= {"momentum_buffer"} for state in optimizer.state.values())
    assert cli.trainer.current_epoch == 2
    assert "resume: optimizer AdamW -> SGD (from the config); its state starts afresh" in caplog.text
