"""A downstream subclass, in its own module, selected from YAML and trained through the CLI."""

from pathlib import Path

import pytest
import torch
import yaml

from lit_dl.cli import LitDLCLI
from tests.downstream.my_project import FocalClassifier, focal_loss_reference


@pytest.fixture
def downstream_config(tiny_config: Path) -> Path:
    config = yaml.safe_load(tiny_config.read_text())
    config["model"] = {
        "class_path": "tests.downstream.my_project.FocalClassifier",
        "init_args": {
            "num_classes": 3,
            "in_features": 16,
            "width": 12,
            "gamma": 2.0,
            "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1, "weight_decay": 0.1}},
        },
    }
    path = tiny_config.with_name("downstream.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


def test_downstream_subclass_trains_through_the_cli(downstream_config, tmp_path):
    root = tmp_path / "runs"
    cli = LitDLCLI(args=["fit", "--config", str(downstream_config), f"--trainer.default_root_dir={root}"])
    model = cli.model
    assert type(model) is FocalClassifier
    # the overridden decay rule: only the hidden Linear's weight decays
    assert model.decay_parameter_names() == {
        "backbone.0.weight": True,
        "backbone.0.bias": False,
        "backbone.1.weight": False,
        "backbone.1.bias": False,
        "backbone.3.weight": False,
        "backbone.3.bias": False,
    }
    groups = cli.trainer.optimizers[0].param_groups
    assert [(g["name"], g["weight_decay"], len(g["params"])) for g in groups] == [
        ("decay", 0.1, 1),
        ("no_decay", 0.0, 5),
    ]
    # the overridden loss is the one the task uses
    logits, target = torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
    assert torch.allclose(model.compute_loss(logits, target), focal_loss_reference(logits, target, 2.0))
    assert cli.trainer.callback_metrics["test/acc"] >= 0.8

    ckpt = cli.trainer.checkpoint_callback.best_model_path
    reloaded = FocalClassifier.load_from_checkpoint(ckpt)
    assert reloaded.hparams.width == 12
    x = torch.randn(2, 16)
    assert torch.equal(reloaded.eval()(x), model.eval()(x))

    tested = LitDLCLI(
        args=[
            "test",
            "--config",
            str(downstream_config),
            f"--trainer.default_root_dir={root}",
            f"--ckpt_path={ckpt}",
        ]
    )
    assert type(tested.model) is FocalClassifier
    assert tested.trainer.callback_metrics["test/acc"] == cli.trainer.callback_metrics["test/acc"]
