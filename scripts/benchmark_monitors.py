"""Measure what the training-health monitors cost at their default frequency.

Fits the same model on the same data with no monitor, with each monitor alone and with all three,
repeats every configuration in interleaved rounds (so drift in machine load hits all of them alike),
and prints the median fit time of each and its overhead over the baseline. The fit includes the
validation epochs, so DeadReLUMonitor's validation hooks are counted. One untimed fit with every
monitor runs first so one-off costs (importing matplotlib for the chart) are not charged to a run.

    python scripts/benchmark_monitors.py                 # 2000 steps, 3 rounds
    python scripts/benchmark_monitors.py --steps 500 --rounds 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import lightning as L
import torch

from lit_dl.callbacks import ActivationStatsMonitor, DeadReLUMonitor, GradientFlowMonitor
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier

CONFIGS: dict[str, Callable[[], list[L.Callback]]] = {
    "baseline": list,
    "DeadReLUMonitor": lambda: [DeadReLUMonitor()],
    "GradientFlowMonitor": lambda: [GradientFlowMonitor()],
    "ActivationStatsMonitor": lambda: [ActivationStatsMonitor()],
    "all three": lambda: [DeadReLUMonitor(), GradientFlowMonitor(), ActivationStatsMonitor()],
}


def fit_seconds(callbacks: list[L.Callback], steps: int, root: str) -> float:
    L.seed_everything(0, verbose=False)
    # The default recipe's network (64 -> 256 -> 256 -> 10, BatchNorm, ReLU, dropout), batch 64.
    model = MLPClassifier(num_classes=10, in_features=64, hidden_sizes=[256, 256], norm="before", dropout=0.2)
    data = SyntheticClassificationDataModule(
        num_classes=10, num_features=64, num_train=64 * 250, num_val=64 * 10, num_test=64, batch_size=64
    )
    trainer = L.Trainer(
        default_root_dir=root,
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        log_every_n_steps=50,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per fit")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats of each configuration")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a steadier clock on a shared machine
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as root:
        fit_seconds(CONFIGS["all three"](), 60, root)  # warm-up, untimed
        for _ in range(args.rounds):
            for name, make in CONFIGS.items():
                times[name].append(fit_seconds(make(), args.steps, root))
    base = statistics.median(times["baseline"])
    print(f"\n{args.steps} steps per fit (validation every 250 steps), median of {args.rounds} rounds, CPU")
    print(f"{'configuration':<24}{'fit s':>8}{'ms/step':>9}{'overhead':>10}   rounds (s)")
    for name, values in times.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        overhead = (median - base) / base
        print(f"{name:<24}{median:>8.2f}{1000 * median / args.steps:>9.2f}{overhead:>+10.1%}   {rounds}")
    worst = max((statistics.median(v) - base) / base for n, v in times.items() if n != "baseline")
    print(f"largest overhead: {worst:+.1%} (budget: 5%)")


if __name__ == "__main__":
    main()
