"""The end of fit names the tested checkpoint and warns when the run ended far from its best."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_dl.cli import main
from lit_dl.cli.fit_summary import MonitorSummary, fit_warning

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

REPO = Path(__file__).resolve().parents[2]


def test_a_collapsed_run_says_which_checkpoint_was_tested_and_that_it_ended_at_chance(
    tmp_path, caplog
) -> None:
    # An MLP without BatchNorm at SGD lr 0.3 with momentum: val/acc 0.9 after epoch 0, then down to chance
    # (the recipe without its EMA and label smoothing: with smoothing it ends at val/acc 0.93).
    args = [
        "fit", "--config", str(REPO / "configs/digits_mlp.yaml"), "--config", str(REPO / "configs/optimizer/momentum.yaml"),
        "--trainer.callbacks=lit_dl://callbacks/default.yaml", "--model.init_args.label_smoothing", "0",
        "--model.init_args.norm", "none", "--model.init_args.optimizer.init_args.lr", "0.3",
        "--model.init_args.lr_scheduler", "null", "--trainer.max_epochs", "6", "--trainer.deterministic", "true",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    with caplog.at_level(logging.INFO), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        main(args)  # exits 0: the run is not bad input, it is a bad run
    run = tmp_path / "lightning_logs" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    val_acc = [e.value for e in events.Scalars("val/acc")]
    best_epoch = max(range(6), key=val_acc.__getitem__)
    (best_file,) = (run / "checkpoints").glob("epoch=*.ckpt")
    assert torch.load(best_file, weights_only=True)["epoch"] == best_epoch
    assert val_acc[best_epoch] >= 0.85 and val_acc[-1] <= 0.15  # the collapse this test is about

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Testing ")]
    assert lines == [
        f"Testing the best checkpoint {best_file.name} (epoch {best_epoch}, val/acc {val_acc[best_epoch]:.4g}) on "
        f"the test split; the last epoch (5) ended at val/acc {val_acc[-1]:.4g}"
    ]
    far = [str(w.message) for w in caught if "ended far from its best" in str(w.message)]
    assert far == [
        f"the run ended far from its best: val/acc {val_acc[-1]:.4g} at the last epoch (5), back at chance level "
        f"(1/10 = 0.1), against {val_acc[best_epoch]:.4g} at epoch {best_epoch}; the test metrics are the best "
        "checkpoint's, not the final weights' (a diverged or collapsed run: lower the LR, add warmup or "
        "normalisation)"
    ]


def _summary(mode: str, best: float, last: float | None, chance: float | None = None) -> MonitorSummary:
    monitor = "val/acc" if mode == "max" else "val/loss"
    return MonitorSummary(monitor, mode, best, 3, "/runs/epoch=3-step=76.ckpt", last, 9, chance)


@pytest.mark.parametrize(
    ("summary", "warns"),
    [
        (_summary("max", 0.97, 0.965, chance=0.1), False),
        (_summary("max", 0.97, 0.97 * 0.91, chance=0.1), False),  # 9% worse
        (_summary("max", 0.9, 0.7, chance=0.1), True),
        (_summary("min", 0.10, 0.105), False),
        (_summary("min", 0.10, 0.5), True),
        (_summary("min", 0.10, float("nan")), True),  # diverged
        (_summary("max", 0.9, None), False),  # no validation at the end
    ],
    ids=["acc-close", "acc-9-percent", "acc-far", "loss-close", "loss-far", "loss-nan", "no-last"],
)
def test_the_warning_is_for_a_last_epoch_more_than_a_tenth_worse_than_the_best(summary, warns) -> None:
    assert (fit_warning(summary) is not None) == warns


def test_the_warning_names_chance_level_only_near_it() -> None:
    assert "back at chance level (1/10 = 0.1)" in fit_warning(_summary("max", 0.9, 0.12, chance=0.1))
    assert "chance" not in fit_warning(_summary("max", 0.9, 0.5, chance=0.1))
    assert fit_warning(_summary("min", 0.1, 0.5)) == (
        "the run ended far from its best: val/loss 0.5 at the last epoch (9), against 0.1 at epoch 3; the test "
        "metrics are the best checkpoint's, not the final weights' (a diverged or collapsed run: lower the LR, "
        "add warmup or normalisation)"
    )
