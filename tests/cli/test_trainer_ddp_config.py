"""configs/trainer/ddp.yaml: composes with every recipe and turns BatchNorm into SyncBatchNorm."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import nn

from lit_dl.cli import LitDLCLI
from tests.conftest import CONFIGS

DDP = CONFIGS / "trainer" / "ddp.yaml"
RECIPES = sorted(p for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_ddp_config_composes_with_every_recipe(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        LitDLCLI(args=["fit", "--config", str(recipe), "--config", str(DDP), "--print_config"])
    assert exit_info.value.code == 0
    merged = yaml.safe_load(capsys.readouterr().out)
    trainer = merged["trainer"]
    assert trainer["strategy"]["class_path"] == "lightning.pytorch.strategies.DDPStrategy"
    assert trainer["strategy"]["init_args"]["find_unused_parameters"] is False
    assert (trainer["sync_batchnorm"], trainer["devices"]) == (True, "auto")
    recipe_config = yaml.safe_load(recipe.read_text())
    assert merged["model"]["class_path"] == recipe_config["model"]["class_path"]
    assert merged["trainer"]["max_epochs"] == recipe_config["trainer"]["max_epochs"]


class NormLayerCensus(L.Callback):
    """Counts the norm layer classes of the module being fitted when the fit fails (``on_exception``
    runs before the strategy's teardown reverts SyncBatchNorm to BatchNorm)."""

    def __init__(self) -> None:
        self.classes: dict[str, int] = {}

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        for module in pl_module.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                name = type(module).__name__
                self.classes[name] = self.classes.get(name, 0) + 1


@pytest.fixture
def restored_environment():
    """Lightning's in-process launch writes MASTER_PORT, LOCAL_RANK, WORLD_SIZE... into os.environ;
    left there, a later `lit-dl` subprocess would think it had been launched already."""
    saved = dict(os.environ)
    threads = torch.get_num_threads()
    yield
    os.environ.clear()
    os.environ.update(saved)
    torch.set_num_threads(threads)


def test_ddp_config_trains_a_batchnorm_recipe_with_sync_batchnorm(tmp_path: Path, restored_environment):
    # One DDP process on the CPU (a real gloo process group of size 1). torch's DDP refuses to wrap a
    # CPU module that holds SyncBatchNorm layers, so the fit must stop with that message, raised after
    # Lightning converted the layers: the census, taken as the error passes, says which and how many.
    # On a GPU the same config trains: scripts/check_sync_batchnorm_gpu.py.
    cli = LitDLCLI(
        args=[
            "--config",
            str(CONFIGS / "digits_cnn.yaml"),
            "--config",
            str(DDP),
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.max_steps=1",
            "--trainer.num_sanity_val_steps=0",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        run=False,
    )
    plain = sum(isinstance(m, nn.BatchNorm2d) for m in cli.model.modules())
    assert plain > 0
    plain_keys = list(cli.model.state_dict())
    census = NormLayerCensus()
    cli.trainer.callbacks.append(census)
    try:
        with pytest.raises(ValueError, match="SyncBatchNorm layers only work with GPU modules"):
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    assert census.classes == {"SyncBatchNorm": plain}
    # the converted layers keep BatchNorm's state keys: checkpoints load into the plain recipe
    assert list(cli.model.state_dict()) == plain_keys


def test_ddp_config_on_cpu_devices_is_refused_before_any_process_starts(tmp_path: Path, capsys, monkeypatch):
    from lit_dl.cli import main

    monkeypatch.delenv("MASTER_PORT", raising=False)  # an earlier DDP test in this process may have set it

    args = ["fit", "--config", str(CONFIGS / "digits_cnn.yaml"), "--config", str(DDP)]
    args += ["--trainer.accelerator=cpu", "--trainer.devices=2", f"--trainer.default_root_dir={tmp_path}"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "lit-dl: error: trainer.sync_batchnorm=true: torch's SyncBatchNorm runs on GPUs only and this "
        "run's devices are CPUs (the model has 6 BatchNorm layer(s)); add --trainer.sync_batchnorm=false"
    ]
    assert "MASTER_PORT" not in os.environ and not torch.distributed.is_initialized()  # nothing launched
    assert list(tmp_path.iterdir()) == []  # no run folder
