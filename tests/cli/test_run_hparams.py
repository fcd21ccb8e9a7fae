"""Runs are comparable in TensorBoard's HPARAMS tab: each run's record (recipe, optimizer and its LR,
scheduler, batch sizes, epochs, precision, devices, seed, the model's arguments) with ``hp_metric``
the best value of the checkpoint's monitor, the whole run's after a resume."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from lit_dl.cli import main
from tests.conftest import CONFIGS

RECIPE = CONFIGS / "digits_mlp.yaml"
QUICK = [
    "--trainer.max_epochs=2",
    "--trainer.limit_train_batches=3",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--test_after_fit=false",
]


def read_hparams(run_dir: Path) -> tuple[dict[str, object], list[float], list[float]]:
    """The run's HPARAMS session (as TensorBoard reads the folder: its first session), its
    ``hp_metric`` values and its ``val/acc`` values, in the order written."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    session = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {name: getattr(value, value.WhichOneof("kind")) for name, value in session.hparams.items()}
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    assert [m.name.tag for m in experiment.metric_infos] == ["hp_metric"]
    hp_metric = [e.value for e in events.Scalars("hp_metric")]
    val_acc = [e.value for e in events.Scalars("val/acc")]
    return hparams, hp_metric, val_acc


def test_two_runs_of_an_lr_sweep_show_their_lr_and_best_val_acc_in_hparams(tmp_path):
    for lr in (0.003, 0.0005):
        main(["fit", "--config", str(RECIPE), f"--trainer.default_root_dir={tmp_path}", *QUICK,
              f"--model.init_args.optimizer.init_args.lr={lr}"])  # fmt: skip
    runs = [read_hparams(tmp_path / "lightning_logs" / f"version_{i}") for i in (0, 1)]
    assert [hparams["optimizer/lr"] for hparams, _, _ in runs] == [
        pytest.approx(0.003),
        pytest.approx(0.0005),
    ]
    for hparams, hp_metric, val_acc in runs:
        assert len(val_acc) == 2
        assert hp_metric[-1] == max(val_acc)  # the best epoch's, not the last one's or Lightning's -1
        assert -1.0 not in hp_metric
        assert {
            k: hparams[k] for k in ("recipe", "model", "data", "optimizer", "lr_scheduler", "monitor")
        } == {
            "recipe": "digits_mlp.yaml",
            "model": "MLPClassifier",
            "data": "DigitsDataModule",
            "optimizer": "AdamW",
            "lr_scheduler": "WarmupCosineLR",
            "monitor": "val/acc",
        }
        numbers = (
            "optimizer/weight_decay",
            "batch_size",
            "global_batch_size",
            "max_epochs",
            "devices",
            "seed",
        )
        assert {k: hparams[k] for k in numbers} == {
            "optimizer/weight_decay": pytest.approx(0.01),
            "batch_size": 64,
            "global_batch_size": 64,
            "max_epochs": 2,
            "devices": 1,
            "seed": 0,
        }
        assert hparams["precision"] == "32-true" and hparams["lr_scheduler/interval"] == "epoch"
        assert hparams["hidden_sizes"] == "[256, 256]"  # the model's own arguments stay
        assert not [k for k in hparams if k.startswith("_")]  # Lightning's _instantiator does not
    assert runs[0][1][-1] != runs[1][1][-1]


@pytest.mark.filterwarnings("ignore:WarmupCosineLR total_steps=2 is shorter than the run")
def test_a_resumed_run_reports_the_best_of_the_whole_run(tmp_path):
    main(["fit", "--config", str(RECIPE), f"--trainer.default_root_dir={tmp_path}", *QUICK])
    main(["fit", "--config", str(RECIPE), f"--trainer.default_root_dir={tmp_path}", *QUICK,
          "--trainer.max_epochs=4", "--model.init_args.optimizer.init_args.lr=1e-6", "--ckpt_path=last"])  # fmt: skip
    _, _, first_acc = read_hparams(tmp_path / "lightning_logs" / "version_0")
    hparams, hp_metric, resumed_acc = read_hparams(tmp_path / "lightning_logs" / "version_1")
    assert len(first_acc) == 2 and len(resumed_acc) == 2
    assert hp_metric[0] == max(first_acc)  # from the start: the best the checkpoint recorded
    assert hp_metric[-1] == max(first_acc + resumed_acc)
    assert hparams["optimizer/lr"] == pytest.approx(1e-6) and hparams["max_epochs"] == 4  # what trained
