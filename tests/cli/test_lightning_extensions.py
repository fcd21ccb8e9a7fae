"""Lightning's callbacks, loggers, profilers and tuners composed from YAML onto lit_dl's recipes.

One row per extension: a fragment appended to the default recipe (``configs/digits_mlp.yaml``; the
image recipe where the extension looks at images or a backbone), one short fit through
``lit_dl.cli.main``, and the effect the extension promises read back from the run folder. The same
table is in docs/callbacks.md ("Lightning's callbacks, loggers and tuners").
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
import yaml

from lit_dl.cli import main
from tests.conftest import CONFIGS, read_scalars

L = "lightning.pytorch.callbacks."
PROBES = "tests.probe_callbacks."
# One tiny fit: 4 optimizer steps of 64 samples, 2 validation batches, a point logged every step.
TINY = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=2",
    "--trainer.log_every_n_steps=1",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--test_after_fit=false",
]


def callback(class_path: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": class_path, "init_args": init_args} if init_args else {"class_path": class_path}


def fit(
    tmp: Path, *args: str, fragment: dict[str, Any] | None = None, recipe: str = "digits_mlp.yaml"
) -> Path:
    """Fit ``recipe`` with TINY, then ``fragment`` (written as a YAML file), then ``args``; returns the
    run folder (``<tmp>/runs/lightning_logs/version_0``)."""
    configs = ["--config", str(CONFIGS / recipe)]
    if fragment is not None:
        path = tmp / "extension.yaml"
        path.write_text(yaml.safe_dump(fragment))
        configs += ["--config", str(path)]
    main(["fit", *configs, *TINY, f"--trainer.default_root_dir={tmp / 'runs'}", *args])
    return tmp / "runs" / "lightning_logs" / "version_0"


def callbacks(*entries: dict[str, Any]) -> dict[str, Any]:
    """A fragment that appends ``entries`` to the recipe's callbacks."""
    return {"trainer": {"callbacks+": list(entries)}}


def last(run: Path) -> dict[str, Any]:
    return torch.load(run / "checkpoints" / "last.ckpt", weights_only=True, map_location="cpu")


def state(checkpoint: dict[str, Any], name: str) -> dict[str, Any]:
    """The saved state of the callback whose state key starts with ``name``."""
    (key,) = [k for k in checkpoint["callbacks"] if k == name or k.startswith(name + "{")]
    return checkpoint["callbacks"][key]


class Run(NamedTuple):
    tmp: Path
    run: Path
    output: str


class Row(NamedTuple):
    """An extension, how the config adds it, and the effect it must have."""

    fragment: dict[str, Any] | None
    args: tuple[str, ...]
    check: Callable[[Run], None]
    recipe: str = "digits_mlp.yaml"
    patch: tuple[str, Callable[[], Any]] | None = None  # (attribute, factory of its stand-in)


def stops_at_the_first_epoch_without_improvement(r: Run) -> None:
    # min_delta 1.0: no accuracy improves on the first epoch's; patience 1 stops after epoch 1 of 5.
    checkpoint = last(r.run)
    assert state(checkpoint, "EarlyStopping")["stopped_epoch"] == 1
    assert checkpoint["epoch"] == 1


def writes_one_file_per_epoch(r: Run) -> None:
    files = sorted(p.name for p in (r.run / "checkpoints").glob("every-*.ckpt"))
    assert files == ["every-epoch=0.ckpt", "every-epoch=1.ckpt"]


def keeps_the_average_and_the_raw_weights(r: Run) -> None:
    checkpoint = last(r.run)
    raw, average = checkpoint["current_model_state"], checkpoint["state_dict"]
    assert raw.keys() == average.keys()
    weight = "backbone.head.weight"
    assert not torch.equal(raw[weight], average[weight])
    assert int(checkpoint["averaging_state"]["n_averaged"]) == 4


def averages_from_its_epoch_at_its_lr(r: Run) -> None:
    checkpoint = last(r.run)
    swa = state(checkpoint, "StochasticWeightAveraging")
    assert swa["latest_update_epoch"] == 1
    assert swa["n_averaged"] >= 1
    # SWALR annealed to swa_lrs in annealing_epochs=1, in place of the recipe's scheduler
    assert [g["lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [0.01, 0.01]
    parameters = [name for name in swa["average_model_state"] if name.endswith(("weight", "bias"))]
    assert parameters
    for name in parameters:  # at the end of the fit the average is the model (BN statistics recomputed)
        assert torch.equal(swa["average_model_state"][name], checkpoint["state_dict"][name]), name
    # the callback's torch.device default is written as a string the config can be read back with
    assert (
        yaml.safe_load((r.run / "config.yaml").read_text())["trainer"]["callbacks"][-1]["init_args"]["device"]
        == "cpu"
    )


def found_lr_trains_and_is_recorded(r: Run) -> None:
    config = yaml.safe_load((r.run / "config.yaml").read_text())
    lr = config["model"]["init_args"]["optimizer"]["init_args"]["lr"]
    assert lr != 0.003
    assert "LearningRateFinder" not in str(config["trainer"]["callbacks"])
    checkpoint = last(r.run)
    assert [g["initial_lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [lr, lr]
    assert checkpoint["lr_schedulers"][0]["base_lrs"] == [lr, lr]
    assert f"model.init_args.optimizer.init_args.lr={lr!r} (LearningRateFinder; configured 0.003)" in r.output


def found_batch_size_trains_and_is_recorded(r: Run) -> None:
    config = yaml.safe_load((r.run / "config.yaml").read_text())
    assert config["data"]["init_args"]["batch_size"] == 8  # 2, 4, 8: the three trials allowed
    assert "BatchSizeFinder" not in str(config["trainer"]["callbacks"])
    assert (r.tmp / "batches.txt").read_text().split() == ["8"] * 4


def lr_is_scaled_for_the_found_batch(r: Run) -> None:
    found_batch_size_trains_and_is_recorded(r)
    checkpoint = last(r.run)
    lr = 0.003 * 8 / 256  # linear scaling from base_batch_size 256 to the found 8, not to the configured 64
    assert [g["initial_lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]] == [
        pytest.approx(lr)
    ] * 2


def steps_once_per_two_batches(r: Run) -> None:
    assert last(r.run)["global_step"] == 2


def logs_the_lr_of_every_group_every_step(r: Run) -> None:
    scalars = read_scalars(r.run)
    for group in ("decay", "no_decay"):
        assert scalars[f"lr-AdamW/{group}"] == [(step, pytest.approx(0.003)) for step in range(4)]


def prints_the_layers_to_its_depth(r: Run) -> None:
    assert "backbone.features" in r.output
    assert "Trainable params" in r.output


def draws_the_epoch_bar(r: Run) -> None:
    assert "Epoch 0" in r.output


def logs_cpu_stats(r: Run) -> None:
    tags = read_scalars(r.run)
    assert any(tag.endswith("cpu_percent") for tag in tags), sorted(tags)


def counts_samples_with_lit_dls_batch_size(r: Run) -> None:
    scalars = read_scalars(r.run)
    assert [value for _, value in scalars["train/samples"]] == [64, 128, 192, 256]
    assert "train/device/samples_per_sec" in scalars


def stops_and_names_the_batches_to_skip(r: Run) -> None:
    skip = json.loads((r.run / "skip_batches.json").read_text())
    assert len(skip) == 2 and skip[1] == skip[0] + 1


def saves_the_state_at_the_exception(r: Run) -> None:
    checkpoint = torch.load(r.tmp / "on_exception" / "on_exception.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 2


class Clock:
    """A clock that advances one second each time it is read (the Timer's ``time``)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


def stops_when_the_time_is_up(r: Run) -> None:
    checkpoint = last(r.run)
    # 3 s: one second a read, from train start; the third step's end is the third read after it
    assert checkpoint["global_step"] == 3
    assert checkpoint["epoch"] == 0
    assert state(checkpoint, "Timer")["time_elapsed"]["train"] >= 3.0
    assert (
        yaml.safe_load((r.run / "config.yaml").read_text())["trainer"]["callbacks"][-1]["init_args"][
            "interval"
        ]
        == "step"
    )


def profile_file(marker: str) -> Callable[[Run], None]:
    def check(r: Run) -> None:
        assert marker in (r.run / "fit-perf.txt").read_text()

    check.__name__ = f"writes_fit_perf_txt_with_{marker.split()[0]}"
    return check


def logs_train_and_val_scalars(r: Run) -> None:
    scalars = read_scalars(r.run)
    assert len(scalars["train/loss"]) == 4
    assert len(scalars["val/acc"]) == 1


def writes_metrics_csv_into_the_same_run_folder(r: Run) -> None:
    assert sorted(p.name for p in r.run.parent.iterdir()) == ["version_0"]
    assert list(r.run.glob("events.out.tfevents.*"))
    with open(r.run / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    val_acc = [float(row["val/acc"]) for row in rows if row["val/acc"]]
    assert val_acc == [pytest.approx(value) for _, value in read_scalars(r.run)["val/acc"]]


def tensorboard_and_csv(root: str) -> dict[str, Any]:
    loggers = "lightning.pytorch.loggers."
    return {
        "trainer": {
            "logger": [
                {"class_path": loggers + "TensorBoardLogger", "init_args": {"save_dir": root}},
                {"class_path": loggers + "CSVLogger", "init_args": {"save_dir": root}},
            ]
        }
    }


ROWS: dict[str, Row] = {
    "EarlyStopping": Row(
        callbacks(callback(L + "EarlyStopping", monitor="val/acc", mode="max", min_delta=1.0, patience=1)),
        ("--trainer.max_epochs=5",),
        stops_at_the_first_epoch_without_improvement,
    ),
    "ModelCheckpoint": Row(
        callbacks(callback(L + "ModelCheckpoint", filename="every-{epoch}", save_top_k=-1, every_n_epochs=1)),
        ("--trainer.max_epochs=2",),
        writes_one_file_per_epoch,
    ),
    "EMAWeightAveraging": Row(
        callbacks(callback(L + "EMAWeightAveraging")), (), keeps_the_average_and_the_raw_weights
    ),
    "StochasticWeightAveraging": Row(
        callbacks(
            callback(L + "StochasticWeightAveraging", swa_lrs=0.01, swa_epoch_start=1, annealing_epochs=1)
        ),
        ("--trainer.max_epochs=2",),
        averages_from_its_epoch_at_its_lr,
    ),
    "GradientAccumulationScheduler": Row(
        callbacks(callback(L + "GradientAccumulationScheduler", scheduling={0: 2})),
        (),
        steps_once_per_two_batches,
    ),
    "LearningRateMonitor": Row(None, (), logs_the_lr_of_every_group_every_step),  # in the recipe's bundle
    "ModelSummary": Row(
        callbacks(callback(L + "ModelSummary", max_depth=2)),
        ("--trainer.enable_model_summary=true",),
        prints_the_layers_to_its_depth,
    ),
    "RichModelSummary": Row(
        callbacks(callback(L + "RichModelSummary", max_depth=2)),
        ("--trainer.enable_model_summary=true",),
        prints_the_layers_to_its_depth,
    ),
    "TQDMProgressBar": Row(
        callbacks(callback(L + "TQDMProgressBar", refresh_rate=1)),
        ("--trainer.enable_progress_bar=true",),
        draws_the_epoch_bar,
    ),
    "RichProgressBar": Row(
        callbacks(callback(L + "RichProgressBar", refresh_rate=1)),
        ("--trainer.enable_progress_bar=true",),
        draws_the_epoch_bar,
    ),
    "DeviceStatsMonitor": Row(callbacks(callback(L + "DeviceStatsMonitor")), (), logs_cpu_stats),
    "ThroughputMonitor": Row(
        callbacks(
            callback(L + "ThroughputMonitor", batch_size_fn="lit_dl.callbacks.batch_size", window_size=2)
        ),
        (),
        counts_samples_with_lit_dls_batch_size,
    ),
    "Timer": Row(
        callbacks(callback(L + "Timer", duration="00:00:00:03")),  # interval: its Interval.step default
        ("--trainer.max_epochs=3",),
        stops_when_the_time_is_up,
        patch=("lightning.pytorch.callbacks.timer.time", Clock),
    ),
    "SimpleProfiler": Row(
        {"trainer": {"profiler": callback("lightning.pytorch.profilers.SimpleProfiler", filename="perf")}},
        (),
        profile_file("run_training_epoch"),
    ),
    "AdvancedProfiler": Row(
        {"trainer": {"profiler": callback("lightning.pytorch.profilers.AdvancedProfiler", filename="perf")}},
        (),
        profile_file("function calls"),
    ),
    "PyTorchProfiler": Row(
        {
            "trainer": {
                "profiler": callback(
                    "lightning.pytorch.profilers.PyTorchProfiler", filename="perf", export_to_chrome=False
                )
            }
        },
        (),
        profile_file("Self CPU"),
    ),
    "TensorBoardLogger": Row(None, (), logs_train_and_val_scalars),  # the Trainer's default logger
    "CSVLogger": Row({"ROOT": True}, (), writes_metrics_csv_into_the_same_run_folder),
}


# Lightning's tuners: what they find trains, config.yaml records it, and rerunning that file (without
# the tuner, which config.yaml leaves out) trains the same run.
TUNERS: dict[str, Row] = {
    "LearningRateFinder": Row(
        callbacks(callback(L + "LearningRateFinder", num_training_steps=16)),
        ("--trainer.limit_train_batches=16",),
        found_lr_trains_and_is_recorded,
    ),
    "BatchSizeFinder": Row(
        callbacks(
            callback(L + "BatchSizeFinder", max_trials=3, steps_per_trial=1),
            callback(PROBES + "RecordBatchSizes", record="BATCHES"),
        ),
        (),
        found_batch_size_trains_and_is_recorded,
    ),
    "BatchSizeFinder with lr_scaling": Row(
        callbacks(
            callback(L + "BatchSizeFinder", max_trials=3, steps_per_trial=1),
            callback(PROBES + "RecordBatchSizes", record="BATCHES"),
        ),
        ("--model.init_args.lr_scaling=linear",),
        lr_is_scaled_for_the_found_batch,
    ),
}


def _fragment(row: Row, tmp: Path) -> dict[str, Any] | None:
    if row.fragment == {"ROOT": True}:
        return tensorboard_and_csv(str(tmp / "runs"))
    text = json.dumps(row.fragment).replace('"BATCHES"', json.dumps(str(tmp / "batches.txt")))
    return json.loads(text)


@pytest.mark.parametrize("extension", list(ROWS), ids=list(ROWS))
def test_lightning_extension_composed_from_yaml_has_its_effect(
    tmp_path, capfd, caplog, monkeypatch, extension: str
) -> None:
    row = ROWS[extension]
    if row.patch is not None:
        monkeypatch.setattr(row.patch[0], row.patch[1]())
    run = fit(tmp_path, *row.args, fragment=_fragment(row, tmp_path), recipe=row.recipe)
    captured = capfd.readouterr()
    row.check(Run(tmp_path, run, captured.out + captured.err + caplog.text))


def test_spike_detection_stops_the_run_in_one_line_and_writes_the_batches_to_skip_into_the_run_folder(
    tmp_path, capsys
) -> None:
    # mode max, no tolerance: the first training loss that does not grow (batch >= warmup 1) is a spike.
    spike = callback(L + "SpikeDetection", mode="max", atol=None, rtol=None)
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, fragment=callbacks(spike))
    assert exit_info.value.code == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith("lit-dl: error: Training spike detected in batch ")
    )
    stops_and_names_the_batches_to_skip(Run(tmp_path, tmp_path / "runs" / "lightning_logs" / "version_0", ""))
    assert not (tmp_path / "runs" / "skip_batches.json").exists()


def test_on_exception_checkpoint_saves_the_state_a_failing_fit_reached(tmp_path) -> None:
    fragment = callbacks(
        callback(L + "OnExceptionCheckpoint", dirpath=str(tmp_path / "on_exception")),
        callback(PROBES + "RaiseAtStep", step=2),
    )
    with pytest.raises(RuntimeError, match="probe failure"):
        fit(tmp_path, fragment=fragment)
    saves_the_state_at_the_exception(Run(tmp_path, tmp_path, ""))


@pytest.mark.parametrize("tuner", list(TUNERS), ids=list(TUNERS))
def test_tuned_value_trains_is_recorded_in_config_yaml_and_rerunning_that_trains_the_same_run(
    tmp_path, capfd, caplog, tuner: str
) -> None:
    row = TUNERS[tuner]
    tuned = fit(tmp_path, *row.args, fragment=_fragment(row, tmp_path))
    captured = capfd.readouterr()
    row.check(Run(tmp_path, tuned, captured.out + captured.err + caplog.text))
    rerun = tmp_path / "rerun"
    main(["fit", "--config", str(tuned / "config.yaml"), f"--trainer.default_root_dir={rerun}"])
    first, second = last(tuned), last(rerun / "lightning_logs" / "version_0")
    assert first["optimizer_states"][0]["param_groups"] == second["optimizer_states"][0]["param_groups"]
    assert first["global_step"] == second["global_step"]
    for name, tensor in first["state_dict"].items():
        assert torch.equal(tensor, second["state_dict"][name]), name
    assert first["lr_schedulers"] == second["lr_schedulers"]


class Refusal(NamedTuple):
    fragment: dict[str, Any]
    args: tuple[str, ...]
    missing: str | None  # the package that is not found
    message: str
    recipe: str = "digits_mlp.yaml"


REFUSALS: dict[str, Refusal] = {
    "RichProgressBar without rich": Refusal(
        callbacks(callback(L + "RichProgressBar")),
        (),
        "rich",
        "trainer.callbacks: lightning.pytorch.callbacks.RichProgressBar draws with rich, and the package rich "
        "is not installed; pip install 'lit-dl[callbacks]'",
    ),
    "RichModelSummary without rich": Refusal(
        callbacks(callback(L + "RichModelSummary")),
        (),
        "rich",
        "trainer.callbacks: lightning.pytorch.callbacks.RichModelSummary draws with rich, and the package rich "
        "is not installed; pip install 'lit-dl[callbacks]'",
    ),
    "DeviceStatsMonitor on the CPU without psutil": Refusal(
        callbacks(callback(L + "DeviceStatsMonitor")),
        ("--trainer.accelerator=cpu",),
        "psutil",
        "trainer.callbacks: lightning.pytorch.callbacks.DeviceStatsMonitor reads CPU stats with psutil, and the "
        "package psutil is not installed; pip install 'lit-dl[callbacks]'",
    ),
    "XLAProfiler without torch_xla": Refusal(
        {"trainer": {"profiler": "xla"}},
        (),
        "torch_xla",
        "trainer.profiler: xla profiles XLA devices (TPUs) through torch_xla, and the package torch_xla is not "
        "installed; it runs on a machine with torch_xla",
    ),
    "BackboneFinetuning": Refusal(
        callbacks(callback(L + "BackboneFinetuning", unfreeze_backbone_at_epoch=1)),
        (),
        None,
        "trainer.callbacks: lightning.pytorch.callbacks.BackboneFinetuning cannot work with lit_dl here: it "
        "freezes the module's `backbone`, which in a lit_dl task is the whole network, classifier head included",
        "digits_cnn.yaml",
    ),
    "a finetuning callback with an LR scheduler": Refusal(
        callbacks(callback(PROBES + "FreezeUntilEpoch")),
        (),
        None,
        "trainer.callbacks: tests.probe_callbacks.FreezeUntilEpoch cannot work with lit_dl here: it adds "
        "parameter groups during the fit, and the LR scheduler built on the first groups fails at its next step",
    ),
    "ModelCheckpoint with the settings of the bundle's": Refusal(
        callbacks(callback(L + "ModelCheckpoint", monitor="val/acc", mode="max")),
        (),
        None,
        "Found more than one stateful callback of type `ModelCheckpoint`.",
    ),
    "LearningRateFinder with lr_scaling": Refusal(
        callbacks(callback(L + "LearningRateFinder")),
        ("--model.init_args.lr_scaling=linear",),
        None,
        "trainer.callbacks: lightning.pytorch.callbacks.LearningRateFinder cannot work with lit_dl here: it "
        "finds the LR for this run's batch, which lr_scaling would scale again",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_extension_that_cannot_work_is_refused_in_one_line_before_anything_is_written(
    tmp_path, capsys, monkeypatch, case: str
) -> None:
    refusal = REFUSALS[case]
    if refusal.missing is not None:  # the package's spec is not found, as when it is not installed
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == refusal.missing else find_spec(name, *a),
        )
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, *refusal.args, fragment=refusal.fragment, recipe=refusal.recipe)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"lit-dl: error: {refusal.message}")
    assert not (tmp_path / "runs").exists()


def test_logger_whose_package_is_missing_is_named_in_one_line(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    fragment = {"trainer": {"logger": callback("lightning.pytorch.loggers.WandbLogger", offline=True)}}
    with pytest.raises(SystemExit) as exit_info:
        fit(tmp_path, fragment=fragment)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("lit-dl: error: lightning.pytorch.loggers.WandbLogger: ")
    assert "wandb" in line
    assert not (tmp_path / "runs").exists()
