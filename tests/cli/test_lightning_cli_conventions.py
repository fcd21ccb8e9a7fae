"""LitDLCLI keeps LightningCLI's calling conventions: the model and data classes first, any trainer
class (one without a ``profiler`` argument too)."""

from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.demos.boring_classes import BoringDataModule, BoringModel

from lit_dl.callbacks.null_profiler import NullProfiler
from lit_dl.cli import LitDLCLI
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier

QUICK = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]


def test_the_classes_given_first_are_the_model_and_data_as_in_lightning_cli(tmp_path):
    cli = LitDLCLI(
        MLPClassifier,
        SyntheticClassificationDataModule,
        args=[
            "fit",
            "--seed_everything=0",
            "--model.num_classes=3",
            "--model.in_features=16",
            "--model.hidden_sizes=[8]",  # the class's own arguments: no class_path, no init_args
            "--data.num_classes=3",
            "--data.num_features=16",
            "--data.num_train=64",
            "--test_after_fit=false",
            f"--trainer.default_root_dir={tmp_path}",
            *QUICK,
            *QUIET,
        ],
    )
    assert type(cli.model) is MLPClassifier and type(cli.datamodule) is SyntheticClassificationDataModule
    assert cli.model.hparams.hidden_sizes == [8]
    assert cli.trainer.global_step == 2
    assert type(cli.trainer.profiler) is NullProfiler


class NoProfilerTrainer(L.Trainer):
    """A trainer class that fixes its profiler, so it has no ``profiler`` argument (LightningCLI
    builds the trainer's options from its signature)."""

    def __init__(self, default_root_dir: str, max_steps: int = 2, callbacks: list | None = None) -> None:
        super().__init__(
            default_root_dir=default_root_dir,
            max_steps=max_steps,
            limit_val_batches=1,
            limit_test_batches=1,
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            profiler="simple",
        )


def test_a_trainer_class_without_a_profiler_argument_trains(tmp_path):
    cli = LitDLCLI(
        BoringModel,
        BoringDataModule,
        trainer_class=NoProfilerTrainer,
        args=["fit", f"--trainer.default_root_dir={tmp_path}"],
    )
    assert cli.trainer.global_step == 2
    assert type(cli.trainer.profiler).__name__ == "SimpleProfiler"  # the class's own, not NullProfiler


def test_the_command_line_in_the_model_class_place_is_refused_in_one_line():
    with pytest.raises(
        TypeError,
        match=r"^LitDLCLI's model_class must be a class, as LightningCLI's, got \['fit'\]; the command line goes in args=\[\.\.\.\]$",
    ):
        LitDLCLI(["fit"])
