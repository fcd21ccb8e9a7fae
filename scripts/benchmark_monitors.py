"""Measure what the training-health monitors cost at their default frequency.

Fits the default recipe's network on synthetic data of the digits' shape: first with no monitor,
then with each monitor alone, then with all three. Every configuration is repeated in interleaved
rounds, so a change in machine load hits all of them alike. Validation epochs are part of the fit,
so DeadReLUMonitor's validation hooks are counted. One untimed fit with every monitor runs first,
so one-off costs (importing matplotlib for the chart) are not charged to a measured run.

Two ratios are printed for each configuration:

- **in-hook**: seconds spent inside the monitor's own code, divided by the baseline fit time. This
  covers its callback hooks, the forward hooks it attaches, and the chart. Each call is timed with
  ``perf_counter``, so other processes on the machine barely move this number.
- **end-to-end**: the best-round fit time over the best-round baseline, as ``timeit`` reports it.
  This is noisier on a shared machine. It also includes Lightning's cost of dispatching every hook
  to one more callback; the "empty L.Callback" row, a callback that does nothing, measures that.

    python scripts/benchmark_monitors.py                 # 2000 steps, 5 rounds
    python scripts/benchmark_monitors.py --steps 500 --rounds 1
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from typing import Any

import lightning as L
import torch

from lit_dl.callbacks import ActivationStatsMonitor, DeadReLUMonitor, GradientFlowMonitor
from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier

CONFIGS: dict[str, Callable[[], list[L.Callback]]] = {
    "baseline": list,
    # What any callback costs in Lightning's per-step hook dispatch, doing nothing at all.
    "empty L.Callback": lambda: [L.Callback()],
    "DeadReLUMonitor": lambda: [DeadReLUMonitor()],
    "GradientFlowMonitor": lambda: [GradientFlowMonitor()],
    "ActivationStatsMonitor": lambda: [ActivationStatsMonitor()],
    "all three": lambda: [DeadReLUMonitor(), GradientFlowMonitor(), ActivationStatsMonitor()],
}
HOOKS = (
    "setup",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_optimizer_step",
    "on_validation_epoch_start",
    "on_validation_epoch_end",
    "teardown",
)


class Stopwatch:
    """Sums the time spent in the functions it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def instrument(callback: L.Callback, watch: Stopwatch) -> None:
    """Time the hooks ``callback`` overrides and the forward hooks it creates (``_hook``)."""
    for name in HOOKS:
        if name in type(callback).__dict__:
            setattr(callback, name, watch.wrap(getattr(callback, name)))
    make_hook = getattr(callback, "_hook", None)
    if make_hook is not None:
        callback._hook = lambda layer, make=make_hook: watch.wrap(make(layer))


def timed_fit(callbacks: list[L.Callback], steps: int, root: str) -> tuple[float, float]:
    """``(fit seconds, seconds inside the callbacks)``."""
    watch = Stopwatch()
    for callback in callbacks:
        instrument(callback, watch)
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
    return time.perf_counter() - start, watch.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="training steps per fit")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved repeats of each configuration")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a steadier clock on a shared machine
    fits: dict[str, list[float]] = {name: [] for name in CONFIGS}
    inside: dict[str, list[float]] = {name: [] for name in CONFIGS}
    with tempfile.TemporaryDirectory() as root:
        timed_fit(CONFIGS["all three"](), 60, root)  # warm-up, untimed
        for _ in range(args.rounds):
            for name, make in CONFIGS.items():
                total, hooks = timed_fit(make(), args.steps, root)
                fits[name].append(total)
                inside[name].append(hooks)
    base = min(fits["baseline"])
    print(f"\n{args.steps} steps per fit (validation every 250 steps), best of {args.rounds} rounds, CPU")
    print(f"baseline: {base:.2f} s, {1000 * base / args.steps:.2f} ms per step")
    print(f"{'monitor':<24}{'in-hook s':>10}{'in-hook':>9}{'fit s':>8}{'end-to-end':>12}")
    worst = 0.0
    for name in list(CONFIGS)[1:]:
        hooks, total = min(inside[name]), min(fits[name])
        worst = max(worst, hooks / base)
        print(f"{name:<24}{hooks:>10.3f}{hooks / base:>+9.1%}{total:>8.2f}{total / base - 1:>+12.1%}")
    for name, values in fits.items():
        print(f"rounds, fit s, {name}: " + ", ".join(f"{v:.2f}" for v in values))
    print(f"largest in-hook overhead: {worst:+.1%} of the step time (budget: 5%)")


if __name__ == "__main__":
    main()
