from __future__ import annotations

import importlib
import logging
from pathlib import Path

import pytest
import yaml
from cb_helpers import LIGHTNING_PYTREE_WARNING, read_events
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, WeightAveraging

from lit_dl.callbacks import (
    AtomicCheckpoint,
    ExactResume,
    ExponentialWeightAveraging,
    NonFiniteGuard,
    SWAWeightAveraging,
    WeightInit,
)
from lit_dl.cli import LitDLCLI, main

pytestmark = LIGHTNING_PYTREE_WARNING

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
RECIPE = CONFIGS / "digits_mlp.yaml"
# the two lists (the bundle, and the default recipe's: the bundle followed by an EMA) are not fragments
FRAGMENTS = sorted(p for p in (CONFIGS / "callbacks").glob("*.yaml") if not p.name.startswith("default"))
BUNDLE = yaml.safe_load((CONFIGS / "callbacks" / "default.yaml").read_text())
RECIPE_CALLBACKS = yaml.safe_load((CONFIGS / "callbacks" / "default_ema.yaml").read_text())
EMA_ENTRIES = yaml.safe_load((CONFIGS / "callbacks" / "ema.yaml").read_text())["trainer"]["callbacks+"]


def build_callbacks(tmp_path: Path, *configs: Path) -> list:
    args = [a for c in configs for a in ("--config", str(c))]
    cli = LitDLCLI(args=[*args, "--trainer.default_root_dir", str(tmp_path)], run=False)
    return cli.config_init["trainer"]["callbacks"]  # as configured, in order


def resolve(class_path: str) -> type:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("fragment", FRAGMENTS, ids=[p.stem for p in FRAGMENTS])
def test_every_callback_config_appends_its_callbacks_with_its_arguments(tmp_path, fragment: Path) -> None:
    entries = yaml.safe_load(fragment.read_text())["trainer"]["callbacks+"]
    callbacks = build_callbacks(tmp_path, RECIPE, fragment)
    # The recipe's callbacks stay, the fragment's follow them; a fragment's weight average replaces
    # the recipe's EMA (a run has one).
    averages = any(issubclass(resolve(e["class_path"]), WeightAveraging) for e in entries)
    kept = BUNDLE if averages else RECIPE_CALLBACKS
    assert [type(c) for c in callbacks[: len(kept)]] == [resolve(e["class_path"]) for e in kept]
    added = callbacks[len(kept) : len(kept) + len(entries)]
    assert [type(c) for c in added] == [resolve(e["class_path"]) for e in entries]
    for callback, entry in zip(added, entries, strict=True):
        for key, value in entry["init_args"].items():
            # ThroughputMonitor keeps the options of its Throughput in `kwargs`
            actual = getattr(callback, key) if hasattr(callback, key) else callback.kwargs[key]
            if callable(actual) and isinstance(value, str):  # a function named by its import path
                value = resolve(value)
            assert actual == value, (fragment.name, key)


def test_default_recipe_uses_the_default_bundle_followed_by_an_ema(tmp_path) -> None:
    recipe = yaml.safe_load(RECIPE.read_text())
    assert recipe["trainer"]["callbacks"] == "callbacks/default_ema.yaml"
    assert RECIPE_CALLBACKS == BUNDLE + EMA_ENTRIES  # no drift between the three files
    callbacks = build_callbacks(tmp_path, RECIPE)
    n = len(RECIPE_CALLBACKS)  # the CLI's own callbacks (the run's config, hparams) follow
    assert [type(c) for c in callbacks[:n]] == [resolve(e["class_path"]) for e in RECIPE_CALLBACKS]
    assert (callbacks[n - 1].decay, callbacks[n - 1].update_every_n_steps) == (0.99, 1)
    # without the average: the bundle alone
    without = LitDLCLI(
        args=["--config", str(RECIPE), "--trainer.default_root_dir", str(tmp_path),
              "--trainer.callbacks=lit_dl://callbacks/default.yaml"],
        run=False,
    ).config_init["trainer"]["callbacks"]  # fmt: skip
    assert [type(c) for c in without[: len(BUNDLE)]] == [resolve(e["class_path"]) for e in BUNDLE]
    assert not any(isinstance(c, WeightAveraging) for c in without)
    by_type = {type(c): c for c in callbacks}
    checkpoint = by_type[AtomicCheckpoint]
    lr_monitor, weight_init = by_type[LearningRateMonitor], by_type[WeightInit]
    assert isinstance(checkpoint, ModelCheckpoint)
    # best by val/acc for the test after fit, last.ckpt to resume from
    assert (checkpoint.monitor, checkpoint.mode, checkpoint.save_last) == ("val/acc", "max", True)
    assert {ExactResume, NonFiniteGuard} <= set(by_type)
    assert (lr_monitor.logging_interval, lr_monitor.log_momentum, lr_monitor.log_weight_decay) == (
        "step",
        True,
        True,
    )
    assert (weight_init.scheme, weight_init.zero_init_residual) == ("auto", False)


def test_event_files_hold_lr_momentum_weight_decay_and_monitor_series(tmp_path) -> None:
    main(
        [
            "fit",
            "--config", str(RECIPE),
            "--config", str(CONFIGS / "callbacks" / "monitors.yaml"),
            "--trainer.default_root_dir", str(tmp_path),
            "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "3",
            "--trainer.limit_val_batches", "1",
            "--trainer.log_every_n_steps", "1",
            "--trainer.enable_progress_bar", "false",
            "--test_after_fit", "false",
        ]
    )  # fmt: skip
    events = read_events(tmp_path / "lightning_logs" / "version_0")
    scalars = set(events.Tags()["scalars"])
    for group in ("decay", "no_decay"):
        for suffix in ("", "-momentum", "-weight_decay"):
            assert len(events.Scalars(f"lr-AdamW/{group}{suffix}")) == 3  # every optimizer step
    assert events.Scalars("lr-AdamW/decay-weight_decay")[0].value == pytest.approx(0.01)
    assert events.Scalars("lr-AdamW/no_decay-weight_decay")[0].value == 0.0
    assert events.Scalars("lr-AdamW/decay-momentum")[0].value == pytest.approx(0.9)  # Adam's beta1
    relus = ["backbone.features.1.2", "backbone.features.2.2"]  # Linear, BN, ReLU, Dropout
    assert {f"dead_relu/{n}" for n in relus} <= scalars
    assert {f"act_stats/{n}/{s}" for n in relus for s in ("mean", "std")} <= scalars
    layers = ["backbone.features.1.0", "backbone.features.2.0", "backbone.head"]
    assert {f"grad_norm/{n}" for n in layers} | {"grad_flow/vanishing", "grad_flow/exploding"} <= scalars
    assert events.Tags()["images"] == ["grad_flow/chart"]


def test_one_bundle_callback_is_changed_with_an_edited_copy_of_the_bundle(tmp_path) -> None:
    # `--trainer.callbacks.init_args.X` reaches the list's last element only (WeightInit in the bundle)
    mine = tmp_path / "my_callbacks.yaml"
    mine.write_text(
        (CONFIGS / "callbacks" / "default.yaml").read_text().replace("save_last: true", "save_last: false")
    )
    args = ["--trainer.callbacks", str(mine), "--trainer.callbacks.init_args.scheme=xavier_normal"]
    callbacks = build_callbacks(tmp_path, RECIPE)  # the bundle as shipped
    assert callbacks[0].save_last is True
    cli = LitDLCLI(
        args=["--config", str(RECIPE), "--trainer.default_root_dir", str(tmp_path), *args], run=False
    )
    changed = cli.config_init["trainer"]["callbacks"]
    assert changed[0].save_last is False
    assert [type(c) for c in changed[: len(BUNDLE)]] == [resolve(e["class_path"]) for e in BUNDLE]
    assert next(c for c in changed if isinstance(c, WeightInit)).scheme == "xavier_normal"


@pytest.mark.parametrize(
    ("extra", "kept", "line"),
    [
        (
            [
                "--config",
                str(CONFIGS / "callbacks" / "ema.yaml"),
                "--trainer.callbacks.init_args.decay=0.999",
            ],
            ExponentialWeightAveraging,
            "trainer.callbacks: ExponentialWeightAveraging(decay=0.999) replaces the earlier "
            "ExponentialWeightAveraging(decay=0.99) (a run has one weight average; the later one in the "
            "list is kept)",
        ),
        (
            ["--config", str(CONFIGS / "callbacks" / "swa.yaml")],
            SWAWeightAveraging,
            "trainer.callbacks: SWAWeightAveraging(swa_epoch_start=0.75) replaces the earlier "
            "ExponentialWeightAveraging(decay=0.99) (a run has one weight average; the later one in the "
            "list is kept)",
        ),
    ],
    ids=["ema", "swa"],
)
def test_a_composed_weight_average_replaces_the_recipes_and_says_so(tmp_path, caplog, extra, kept, line):
    with caplog.at_level(logging.INFO):
        main(
            [
                "fit", "--config", str(RECIPE), *extra,
                "--trainer.default_root_dir", str(tmp_path),
                "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
                "--trainer.limit_val_batches", "1", "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false", "--test_after_fit", "false",
            ]
        )  # fmt: skip
    assert [r.getMessage() for r in caplog.records if "replaces the earlier" in r.getMessage()] == [line]
    # the run folder's config holds the one average that trained, after the bundle
    saved = yaml.safe_load((tmp_path / "lightning_logs" / "version_0" / "config.yaml").read_text())
    classes = [resolve(e["class_path"]) for e in saved["trainer"]["callbacks"]]
    assert classes == [*(resolve(e["class_path"]) for e in BUNDLE), kept]
    if kept is ExponentialWeightAveraging:
        assert saved["trainer"]["callbacks"][-1]["init_args"]["decay"] == 0.999
