"""Time the default recipe's training loop against a hand-written PyTorch loop.

The contestants train the same MLP on the same digits split with the same optimizer, parameter
groups, LR schedule, batch size and number of epochs, keep the recipe's exponential moving average of
the weights when it has one (configs/callbacks/default_ema.yaml: the hand-written loop with torch's
``AveragedModel``, barebones with the recipe's callback), and all evaluate the validation split
(on the average, if any) after every epoch. The average is training work that every contestant does,
not overhead; ``--breakdown`` shows what it costs the recipe.

- **hand-written**: a plain PyTorch loop over in-memory tensors;
- **lit_dl**: the recipe exactly as ``lit-dl fit`` builds it from configs/digits_mlp.yaml (logger,
  checkpointing, LR monitor, weight init), only with the overrides given after ``--``;
- **Lightning barebones**: the lit_dl model and data under ``Trainer(barebones=True)`` (no logger,
  no callbacks but the recipe's weight average, no progress tracking; the task, seeing logging off,
  sums no training-loss window and computes no validation metric): the floor of Lightning's own
  training loop;
- **naive Lightning**: the recipe, but written the way a first Lightning module usually is:
  ``self.log`` of the loss on every step, metric objects logged from every validation step, and a
  ``TensorDataset`` whose samples the DataLoader collates one by one.

``--breakdown`` adds one lit_dl contestant per default component, the recipe with that component
removed (each callback of the bundle, the logger, the task's train-loss window), and one that swaps
the CLI's ``NullProfiler`` for Lightning's default ``PassThroughProfiler``: how much of the gap to
barebones each one costs (a negative cost is time saved). A cost is the median over the repeats of
the recipe's time minus the contestant's time in the same repeat; it still carries the run's noise.
``--hook-times`` adds a steadier account from one more lit_dl run under Lightning's
``SimpleProfiler``: the time spent inside each callback's hooks and the task's validation-epoch end,
and how many callback hook calls Lightning made (each also costs its dispatch, outside these times);
and how many profiler contexts Lightning opened in that run, with what one costs under its default
``PassThroughProfiler`` and under the CLI's ``NullProfiler`` (timed here): what the swap saves.

Timings cover ``fit`` / the loop only (no imports, no test pass), each after a ``gc.collect()``
(garbage collection stays on: what a contestant allocates is collected on its own clock). The
contestants run interleaved, ``--repeats`` times, each repeat in a rotated order; the best time of
each is reported (the run least disturbed by other processes, as ``timeit`` reports it), with the
ratios measured in the same run, and the ratio of the medians next to the main one.

    python scripts/benchmark_overhead.py
    python scripts/benchmark_overhead.py --repeats 5 -- --model.init_args.hidden_sizes=[1024,1024]
    python scripts/benchmark_overhead.py --breakdown --hook-times
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import tempfile
import time
import timeit
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.profilers import PassThroughProfiler, Profiler, SimpleProfiler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, TensorDataset

from lit_dl.callbacks import ExponentialWeightAveraging
from lit_dl.callbacks.null_profiler import NullProfiler
from lit_dl.cli import LitDLCLI, run_command
from lit_dl.models import MLPClassifier
from lit_dl.models.task_logging import TaskLogging
from lit_dl.optim import parameter_groups

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_mlp.yaml"


class NaiveMLPClassifier(MLPClassifier):
    """The recipe's model with the per-step logging that lit_dl's task base avoids."""

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.compute_loss(self(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def _eval_step(self, batch, stage):
        x, y = batch
        logits = self(x)
        self.eval_loss[stage].update(self.compute_loss(logits, y), weight=y.shape[0])
        self.eval_metrics[stage].update(logits, y)
        self.log(f"{stage}/loss", self.eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True)
        self.log_dict(self.eval_metrics[stage], on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self):
        pass


def build(epochs: int, root: str, progress_bar: bool, overrides: list[str], naive: bool = False) -> LitDLCLI:
    args = [
        "--config",
        str(CONFIG),
        f"--trainer.max_epochs={epochs}",
        f"--trainer.default_root_dir={root}",
        f"--trainer.enable_progress_bar={str(progress_bar).lower()}",
        "--trainer.enable_model_summary=false",
    ]
    if naive:
        args.append(f"--model.class_path={__name__}.NaiveMLPClassifier")
    return LitDLCLI(args=args + overrides, run=False)


def hand_written(cli: LitDLCLI, epochs: int, seed: int) -> float:
    """A plain PyTorch loop over the same model, data and optimizer settings as the recipe."""
    model = copy.deepcopy(cli.model.backbone)
    dm = cli.datamodule
    dm.setup("fit")
    x_train, y_train = dm.train_set.tensors
    x_val, y_val = dm.val_set.tensors
    # the recipe's decay / no-decay split, applied to the copy of its backbone
    optimizer = cli.model.optimizer_factory(parameter_groups(model, cli.model.should_decay))
    scheduler = cli.model.lr_scheduler_factory(optimizer) if cli.model.lr_scheduler_factory else None
    if hasattr(
        scheduler, "fit_to_run"
    ):  # a schedule over the run (stepped per epoch below), as the task does
        scheduler.fit_to_run(epochs, unit="epochs")
    # the recipe's average of the weights, if it has one, as a hand-written loop keeps one: torch's
    # AveragedModel with its fused EMA update after every optimizer step, validated in place of the model
    # (at a fixed decay: the recipe's debiasing changes one scalar per step, not the kernels)
    averaging = _weight_averaging(cli)
    average = None
    if averaging is not None:
        average = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(averaging.decay), use_buffers=averaging.use_buffers
        )
    batch, n = dm.batch_size, x_train.shape[0]
    steps = n // batch if dm.drop_last else -(-n // batch)
    gen = torch.Generator().manual_seed(seed)
    gc.collect()  # the previous contestants' garbage is not collected on this one's clock
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(steps):
            idx = perm[i * batch : (i + 1) * batch]
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if average is not None:
                average.update_parameters(model)
        if scheduler is not None:
            scheduler.step()
        evaluated = model if average is None else average.module
        evaluated.eval()
        with torch.no_grad():
            correct = total_loss = 0.0
            for i in range(0, x_val.shape[0], dm.eval_batch_size):
                logits = evaluated(x_val[i : i + dm.eval_batch_size])
                target = y_val[i : i + dm.eval_batch_size]
                total_loss += float(F.cross_entropy(logits, target, reduction="sum"))
                correct += float((logits.argmax(-1) == target).sum())
    return time.perf_counter() - start


def _weight_averaging(cli: LitDLCLI) -> ExponentialWeightAveraging | None:
    """The recipe's exponential average of the weights (configs/callbacks/default_ema.yaml's), if any."""
    found = [c for c in cli.trainer.callbacks if isinstance(c, ExponentialWeightAveraging)]
    return found[0] if found else None


def _per_sample_loaders(cli: LitDLCLI) -> None:
    """Give the naive contestant TensorDataset loaders: per-sample __getitem__ and default collation."""
    dm = cli.datamodule
    dm.setup("fit")

    def loader(split, train):
        return DataLoader(
            TensorDataset(*split.tensors),
            batch_size=dm.batch_size,
            shuffle=train,
            drop_last=train and dm.drop_last,
        )

    dm.train_dataloader = lambda: loader(dm.train_set, True)
    dm.val_dataloader = lambda: loader(dm.val_set, False)


class _NoTrainWindow(TaskLogging):
    """The task's logging without its train-loss window (nothing logged from training steps)."""

    def log_train_window(self, terms, batch_idx):
        pass


def _without(component: str, cli: LitDLCLI) -> LitDLCLI:
    """``cli`` with one default component removed (``--breakdown``)."""
    trainer = cli.trainer
    if component == "logger + LearningRateMonitor":  # the monitor refuses to run without a logger
        trainer.loggers = []
        trainer.callbacks = [c for c in trainer.callbacks if type(c).__name__ != "LearningRateMonitor"]
    elif component == "train-loss window":
        cli.model.task_logging.__class__ = _NoTrainWindow
    elif component == "NullProfiler":  # Lightning's default in its place
        trainer.profiler = PassThroughProfiler()
    else:
        trainer.callbacks = [c for c in trainer.callbacks if type(c).__name__ != component]
    return cli


BREAKDOWN = (
    "AtomicCheckpoint",
    "ExactResume",
    "NonFiniteGuard",
    "ExponentialWeightAveraging",
    "LearningRateMonitor",
    "WeightInit",
    "EpochSummary",
    "RunHparams",
    "logger + LearningRateMonitor",
    "train-loss window",
    "NullProfiler",
)


def hook_times(
    epochs: int, root: str, progress_bar: bool, overrides: list[str]
) -> tuple[dict[str, float], int, int]:
    """Seconds inside each callback's hooks (by class) and the task's ``on_validation_epoch_end`` in
    one lit_dl run, the number of callback hook calls and the number of all the profiler contexts
    Lightning opened (callback, module and strategy hooks, loop steps), from its ``SimpleProfiler``."""
    cli = build(epochs, root, progress_bar, overrides)
    profiler = SimpleProfiler(dirpath=root, filename="hook-times")  # its report to a file, not stdout
    cli.trainer.profiler = profiler
    lightning(cli)
    totals: dict[str, float] = {}
    calls = 0
    # a callback's state key need not be its class name (AtomicCheckpoint keeps ModelCheckpoint's)
    classes = {cb.state_key: type(cb).__name__ for cb in cli.trainer.callbacks}
    contexts = sum(len(durations) for durations in profiler.recorded_durations.values())
    for action, durations in profiler.recorded_durations.items():
        if action.startswith("[Callback]"):  # "[Callback]<state key>.<hook>"
            key = action[len("[Callback]") :].rsplit(".", 1)[0]
            name = classes.get(key, key.split("{")[0])
            calls += len(durations)
        elif action.startswith("[LightningModule]") and action.endswith(".on_validation_epoch_end"):
            name = "task: validation metrics"
        else:
            continue
        totals[name] = totals.get(name, 0.0) + sum(durations)
    return dict(sorted(totals.items(), key=lambda item: -item[1])), calls, contexts


def context_cost(profiler: Profiler, number: int = 20_000) -> float:
    """Seconds per ``with profiler.profile(name):`` as Lightning opens one around a callback hook."""

    def one() -> None:
        with profiler.profile(f"[Callback]{type(profiler).__qualname__}.on_train_batch_end"):
            pass

    return min(timeit.repeat(one, number=number, repeat=5)) / number


def lightning(cli: LitDLCLI) -> float:
    gc.collect()  # the previous contestants' garbage is not collected on this one's clock
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return time.perf_counter() - start


def rotated(names: tuple[str, ...], shift: int) -> list[str]:
    """``names`` starting from the ``shift``-th (modulo their number), the earlier ones moved to the end."""
    shift %= len(names)
    return [*names[shift:], *names[:shift]]


def run(name: str, args: argparse.Namespace, root: str, seed: int) -> float:
    """One timed run of the contestant ``name``."""
    cli = build(args.epochs, root, args.progress_bar, args.overrides, naive=name == "naive Lightning")
    if name == "hand-written loop":
        return hand_written(cli, args.epochs, seed=seed)
    if name == "Lightning barebones":
        # the recipe's average of the weights is training work, not overhead: barebones keeps it
        averaging = _weight_averaging(cli)
        cli.trainer = L.Trainer(
            barebones=True,
            max_epochs=args.epochs,
            default_root_dir=root,
            callbacks=[averaging] if averaging is not None else None,
        )
    elif name == "naive Lightning":
        _per_sample_loaders(cli)
    elif name != "lit_dl recipe":
        cli = _without(name.removeprefix("lit_dl - "), cli)
    return lightning(cli)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--progress-bar", action="store_true", help="keep the TQDM progress bar on")
    parser.add_argument(
        "--breakdown", action="store_true", help="also time the recipe without each default component"
    )
    parser.add_argument(
        "--hook-times", action="store_true", help="also time each callback's hooks in one more lit_dl run"
    )
    parser.add_argument("overrides", nargs="*", help="lit-dl overrides for the recipe, after --")
    args = parser.parse_args()
    names = ("hand-written loop", "lit_dl recipe", "Lightning barebones", "naive Lightning")
    parts = BREAKDOWN if args.breakdown else ()
    names += tuple(f"lit_dl - {part}" for part in parts)
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.repeats):
            # Each repeat runs the contestants in a rotated order, so that none always runs in the
            # same place (right after the hand-written loop, say) on this noisy, shared machine.
            for name in rotated(names, r):
                times[name].append(run(name, args, root, seed=r))
    best = {name: min(values) for name, values in times.items()}
    base = best["hand-written loop"]
    print(
        f"epochs={args.epochs} repeats={args.repeats} progress_bar={args.progress_bar} overrides={args.overrides}"
    )
    for name, values in times.items():
        print(
            f"{name:32s}: {best[name]:.3f} s best, {statistics.median(values):.3f} s median, "
            f"{best[name] / base:.2f}x hand-written"
        )
    print(f"ratio lit_dl / hand-written: {best['lit_dl recipe'] / base:.2f}x")
    print(f"ratio lit_dl / barebones: {best['lit_dl recipe'] / best['Lightning barebones']:.2f}x")
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(
        f"ratio lit_dl / barebones, medians: {medians['lit_dl recipe'] / medians['Lightning barebones']:.2f}x"
    )
    print(f"ratio naive / lit_dl: {best['naive Lightning'] / best['lit_dl recipe']:.2f}x")

    # A component's cost: the median over the repeats of the recipe's time minus the time without it
    # in the same repeat, steadier than a difference of best times.
    def paired(name: str) -> float:
        return statistics.median(a - b for a, b in zip(times["lit_dl recipe"], times[name], strict=True))

    if parts:
        gap = paired("Lightning barebones")
        print(f"gap lit_dl - barebones (median of paired differences): {gap:+.3f} s")
    for part in parts:
        saved = paired(f"lit_dl - {part}")
        print(f"cost of {part:28s}: {saved:+.3f} s ({saved / gap:+.0%} of the gap to barebones)")
    if args.hook_times:
        with tempfile.TemporaryDirectory() as root:
            totals, calls, contexts = hook_times(args.epochs, root, args.progress_bar, args.overrides)
        for name, seconds in totals.items():
            print(f"inside {name:28s}: {seconds:.3f} s")
        print(f"callback hook calls: {calls} (Lightning's dispatch of each is not in the times above)")
        passthrough, null = context_cost(PassThroughProfiler()), context_cost(NullProfiler())
        print(
            f"profiler contexts: {contexts}, {passthrough * 1e6:.1f} us each with Lightning's "
            f"PassThroughProfiler, {null * 1e6:.1f} us with NullProfiler: "
            f"{contexts * (passthrough - null):.3f} s saved"
        )


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
