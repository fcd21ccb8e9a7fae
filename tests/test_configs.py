"""Every YAML in configs/ is exercised: recipes train standalone, the rest compose onto the default."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lit_dl.callbacks import AtomicCheckpoint, EpochSummary, ExactResume, NonFiniteGuard
from lit_dl.cli import LitDLCLI
from tests.conftest import CONFIGS

DEFAULT = CONFIGS / "digits_mlp.yaml"
ALL = sorted(CONFIGS.rglob("*.yaml"))
RECIPES = [p for p in ALL if p.parent == CONFIGS]
COMPOSABLE = [p for p in ALL if p.parent in (CONFIGS / "optimizer", CONFIGS / "lr_scheduler")]


def name(path: Path) -> str:
    return str(path.relative_to(CONFIGS))


def test_the_classic_optimizer_and_scheduler_files_exist():
    assert {p.stem for p in (CONFIGS / "optimizer").glob("*.yaml")} >= {
        "sgd",
        "momentum",
        "nesterov",
        "adagrad",
        "adadelta",
        "rmsprop",
        "adam",
        "adamw",
    }
    assert {p.stem for p in (CONFIGS / "lr_scheduler").glob("*.yaml")} >= {"step", "cosine"}


@pytest.mark.parametrize("recipe", RECIPES, ids=name)
def test_recipe_trains_standalone(recipe, tmp_path):
    if yaml.safe_load(recipe.read_text())["data"]["class_path"] == "lit_dl.data.VisionDataModule":
        pytest.skip("needs downloaded data: trained on fake files in tests/data/test_vision.py")
    cli = LitDLCLI(
        args=[
            "fit",
            "--config",
            str(recipe),
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.fast_dev_run=2",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.trainer.state.finished
    assert "test/acc" in cli.trainer.callback_metrics


@pytest.mark.parametrize("extra", COMPOSABLE, ids=name)
def test_file_composes_with_the_default_recipe_and_trains(extra, tmp_path):
    cli = LitDLCLI(
        args=[
            "fit",
            "--config",
            str(DEFAULT),
            "--config",
            str(extra),
            f"--trainer.default_root_dir={tmp_path}",
            # four real epochs of a few batches, not fast_dev_run: the warmup files size their warmup as a
            # tenth of the run, and a schedule needs a run longer than its warmup
            "--trainer.max_epochs=4",
            "--trainer.limit_train_batches=5",
            "--trainer.limit_val_batches=2",
            "--trainer.limit_test_batches=2",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
        ]
    )
    # the composed section is exactly what the file says (no init_args carried over from the recipe)
    wanted = yaml.safe_load(extra.read_text())["model"]["init_args"]
    got = cli.config.fit.model.init_args
    for key, value in wanted.items():
        if isinstance(value, dict):
            assert got[key].class_path == value["class_path"]
            for arg, arg_value in value["init_args"].items():
                got_value = got[key].init_args[arg]
                if isinstance(arg_value, list):  # a tuple where the argument is typed one (betas)
                    got_value = list(got_value)
                assert got_value == arg_value
        else:
            assert got[key] == value
    optimizer = cli.trainer.optimizers[0]
    assert [g["name"] for g in optimizer.param_groups] == ["decay", "no_decay"]
    assert optimizer.param_groups[1]["weight_decay"] == 0.0
    assert cli.trainer.state.finished


def _schedulers(node):
    """Every ``lr_scheduler`` mapping in a parsed YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "lr_scheduler" and isinstance(value, dict):
                yield value
            yield from _schedulers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _schedulers(value)


@pytest.mark.parametrize("config", ALL, ids=name)
def test_no_shipped_schedule_hard_codes_the_run_length(config):
    for scheduler in _schedulers(yaml.safe_load(config.read_text())):
        init_args = scheduler.get("init_args", {})
        assert "T_max" not in init_args and "max_lr" not in init_args, scheduler
        assert init_args.get("total_steps") is None, scheduler
        assert scheduler["class_path"] not in (
            "torch.optim.lr_scheduler.CosineAnnealingLR",
            "torch.optim.lr_scheduler.OneCycleLR",
        )


@pytest.mark.parametrize("recipe", RECIPES, ids=name)
def test_every_recipe_keeps_last_ckpt_resumes_exactly_stops_on_non_finite_and_writes_epochs_csv(
    recipe, tmp_path
):
    cli = LitDLCLI(args=["--config", str(recipe), f"--trainer.default_root_dir={tmp_path}"], run=False)
    kinds = [type(c) for c in cli.trainer.callbacks]
    assert {AtomicCheckpoint, ExactResume, NonFiniteGuard, EpochSummary} <= set(kinds)
    (checkpoint,) = [c for c in cli.trainer.callbacks if isinstance(c, AtomicCheckpoint)]
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_last) == ("val/acc", "max", True)
