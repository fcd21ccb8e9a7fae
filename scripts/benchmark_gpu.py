"""Images/s of ResNet-18 (CIFAR stem) on one GPU: a hand-written loop against the lit_dl recipes.

In one process, on the same synthetic uint8 CIFAR-shaped data (fake CIFAR-10 files written to a
temporary folder, so the recipes run unchanged through the CLI):

- **hand-written**: a plain PyTorch loop, bf16 autocast, channels_last, data on the GPU, the same
  batched crop/flip augmentation, fused SGD, batch 512 (eager, then ``torch.compile``);
- **shipped**: ``configs/cifar10_resnet18.yaml`` as shipped (fp32, batch 128, DataLoader);
- **fast**: ``configs/cifar10_resnet18_fast.yaml`` (bf16, channels_last, device-resident data, batch 512);
- **fast+compile**: the fast recipe with ``--model.init_args.compile`` (default ``reduce-overhead``).

Each contestant trains ``--warmup`` steps (not timed: cuDNN autotuning, compilation, CUDA graph
capture), then ``--steps`` timed steps between two ``torch.cuda.synchronize()``, with a full garbage
collection just before them: compiling leaves many new long-lived Python objects (100k with the
``aot_eager`` backend on the CPU), and a full collection, which such growth triggers sooner or later,
took 0.18 to 0.25 s on a 2-core CPU with the 0.44M to 0.55M objects a recipe run holds: a one-off in
a real run, but a large part of a 60-step window. Every contestant is repeated
``--repeats`` times, each repeat in a rotated order, each run after a ``gc.collect()`` and
``torch.cuda.empty_cache()`` (no contestant pays for another's garbage); the median is reported with
the ratios fast / hand-written (same mode) and fast / shipped. Each run also prints its per-step
clocks (:class:`StepTrace`: the host's and the GPU's step times, p50/p90/max, and its slowest steps
with the garbage collection inside them), which tell a steadily slower loop from one that stalls now
and then. ``--sync-check`` instead runs the fast recipe's timed steps under
``torch.cuda.set_sync_debug_mode("error")``: any host synchronisation in them raises, in the task, the
callbacks, Lightning's loop and logging, or the batch fetching between steps. Give it more steps than
``log_every_n_steps`` (50) so that a log window and the NonFiniteGuard checks fall inside.
``--breakdown`` adds the fast recipe without its callbacks and logger (eager and compiled) and the
fast recipe with ``trainer.benchmark`` (cuDNN autotuning) on, and prints a host-side cProfile of the
fast recipe's timed steps: where the Trainer's per-step host time goes. The timed steps stay inside
the first epoch (its end writes a checkpoint, which the hand-written loop does not).

Without CUDA it says so and runs a tiny smoke version on the CPU (exit 0).

    python scripts/benchmark_gpu.py                 # on a GPU machine
    python scripts/benchmark_gpu.py --sync-check
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import itertools
import pickle
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from lit_dl.cli import LitDLCLI
from lit_dl.data.batch_augment import ImageAugment, ImageBatchTransform
from lit_dl.data.image_files import IMAGE_DATASETS
from lit_dl.nn import ResNet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write_fake_cifar(root: Path, per_batch: int, n_test: int) -> None:
    """Random uint8 images in the CIFAR-10 python layout (5 training batches + the test batch)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)


class Run(NamedTuple):
    """One contestant's timed steps: images/s, Python's garbage collector inside them, and the
    per-step clocks (:meth:`StepTrace.summary`)."""

    images_per_s: float
    gc_ms: float
    gc_collections: int
    steps: str = ""


class GcClock:
    """Time spent in Python's garbage collector between :meth:`start` and :meth:`stop` (``gc.callbacks``):
    a collection pauses the host, and a host-bound loop loses that time directly."""

    def __init__(self) -> None:
        self.seconds, self.collections, self._began = 0.0, 0, None

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            self.seconds += time.perf_counter() - self._began
            self.collections += 1
            self._began = None

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


class StepTrace:
    """Per-step clocks of a contestant's timed steps, to tell a steady loop from one that stalls.

    :meth:`mark` at the start of each timed step and once after the last records the host's clock
    (``perf_counter``), the GC clock's running total and, with CUDA, an event on the current stream
    (its GPU timestamp, read after the final synchronisation: no sync while the steps run). A
    host-bound loop shows the same step time on both clocks; a host stall (a collection, a sync, a
    slow hook at a log window) shows as a long step on both, with the GPU idle; a GPU-bound loop
    shows the host running ahead in bursts. The slowest steps are named by their global step.
    """

    def __init__(self, gc_clock: GcClock, first_step: int) -> None:
        self.gc_clock = gc_clock
        self.first_step = first_step
        self.cuda = torch.cuda.is_available()
        self.host: list[float] = []
        self.gc: list[float] = []
        self.events: list[torch.cuda.Event] = []

    def mark(self) -> None:
        self.host.append(time.perf_counter())
        self.gc.append(self.gc_clock.seconds)
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.events.append(event)

    def summary(self, slowest: int = 3) -> str:
        """``host p50/p90/max ms``, ``gpu`` the same, and the slowest steps (call after synchronising)."""
        host = [1e3 * (b - a) for a, b in itertools.pairwise(self.host)]
        if not host:
            return ""
        gc_ms = [1e3 * (b - a) for a, b in itertools.pairwise(self.gc)]
        gpu = [a.elapsed_time(b) for a, b in itertools.pairwise(self.events)] if self.events else None

        def spread(values: list[float]) -> str:
            ordered = sorted(values)
            p50, p90 = statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
            return f"{p50:.2f}/{p90:.2f}/{ordered[-1]:.2f}"

        text = f"step ms p50/p90/max: host {spread(host)}"
        if gpu is not None:
            text += f", gpu {spread(gpu)}"
        worst = sorted(range(len(host)), key=host.__getitem__, reverse=True)[:slowest]
        steps = []
        for i in worst:
            gpu_part = f" gpu {gpu[i]:.1f}" if gpu is not None else ""
            steps.append(f"{self.first_step + i}: {host[i]:.1f}{gpu_part} gc {gc_ms[i]:.1f}")
        clocks = "host gpu gc" if gpu is not None else "host gc"
        return text + f"; slowest (step: {clocks} ms) " + ", ".join(steps)


class StepTimer(L.Callback):
    """Times steps ``warmup .. warmup + steps`` between CUDA synchronisations, then stops the run."""

    def __init__(
        self,
        warmup: int,
        steps: int,
        sync_check: bool = False,
        profile: bool = False,
    ) -> None:
        self.warmup, self.steps, self.sync_check = warmup, steps, sync_check
        self.seconds = float("nan")
        self.batch_size = 0
        self.profiler = cProfile.Profile() if profile else None
        self.gc = GcClock()
        self.trace = StepTrace(self.gc, first_step=warmup)

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            gc.collect()  # the warmup's (compilation's) collection debt is not paid in the timed steps
            self._sync()
            self.start = time.perf_counter()
            self.batch_size = batch[0].shape[0]
            self.gc.start()
            if self.profiler is not None:
                self.profiler.enable()
            if self.sync_check:  # on for the whole timed window: hooks, logging and batch fetching too
                torch.cuda.set_sync_debug_mode("error")
        if self.warmup <= trainer.global_step < self.warmup + self.steps:
            self.trace.mark()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.warmup + self.steps:
            self.trace.mark()
            if self.sync_check:
                torch.cuda.set_sync_debug_mode(0)
            self._sync()
            self.seconds = time.perf_counter() - self.start
            self.gc.stop()
            if self.profiler is not None:
                self.profiler.disable()
            trainer.should_stop = True


def run_recipe(
    config: str,
    root: Path,
    data: Path,
    args: argparse.Namespace,
    extra: list[str],
    sync_check: bool = False,
    profile: bool = False,
):
    timer = StepTimer(args.warmup, args.steps, sync_check, profile)
    cli_args = ["--config", str(CONFIGS / config), f"--trainer.default_root_dir={root}"]
    cli_args += [f"--data.init_args.root={data}", f"--data.init_args.val_size={args.val_size}"]
    cli_args += [f"--trainer.max_steps={args.warmup + args.steps + 1}", "--trainer.limit_val_batches=0"]
    cli_args += ["--trainer.max_epochs=-1", "--trainer.enable_progress_bar=false"]
    cli_args += ["--trainer.enable_model_summary=false", *extra, *args.recipe_args]
    cli = LitDLCLI(args=cli_args, run=False)
    cli.trainer.callbacks.append(timer)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if timer.profiler is not None:
        print(
            f"host-side profile of {args.steps} timed steps of {config} {' '.join(extra)} (cProfile, by own time):"
        )
        pstats.Stats(timer.profiler).sort_stats("tottime").print_stats(25)
    images_per_s = timer.batch_size * timer.steps / timer.seconds
    return Run(images_per_s, timer.gc.seconds * 1e3, timer.gc.collections, timer.trace.summary())


def hand_written(
    args: argparse.Namespace, images: torch.Tensor, labels: torch.Tensor, compile_mode: str | None
):
    """The plain loop: same network, augmentation, optimizer, precision and memory format as the fast recipe."""
    device = images.device
    cuda = device.type == "cuda"
    model = ResNet(in_channels=3, num_classes=10, depth=18, width=args.width, stem="cifar").to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=0.4, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=True
    )
    net = torch.compile(model, mode=compile_mode) if compile_mode else model
    spec = IMAGE_DATASETS["cifar10"]
    transform = ImageBatchTransform(
        torch.tensor(spec.mean), torch.tensor(spec.std), ImageAugment(4, True)
    ).to(device)
    n, batch = images.shape[0], args.batch_size
    generator = torch.Generator().manual_seed(0)
    order = torch.randperm(n, generator=generator).to(device)
    params = tuple(p.to(device) for p in transform.augment.draw(n, generator))
    dtype = torch.bfloat16 if args.precision.startswith("bf16") else None
    start = 0.0
    clock = GcClock()
    trace = StepTrace(clock, first_step=args.warmup)
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            gc.collect()  # as StepTimer: the warmup's collection debt is not paid in the timed steps
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            clock.start()
        if step >= args.warmup:
            trace.mark()
        i = step % (n // batch)
        idx = order[i * batch : (i + 1) * batch]
        x = transform(images[idx], tuple(p[idx] for p in params))
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(net(x), labels[idx], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    trace.mark()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    clock.stop()
    return Run(batch * args.steps / seconds, clock.seconds * 1e3, clock.collections, trace.summary())


def fresh_start(cuda: bool) -> None:
    """The state each contestant starts from: the earlier contestants' garbage collected (a Trainer is
    a web of reference cycles, freed only by a full collection, which would otherwise pause a later
    contestant inside its timed steps), their cached GPU blocks handed back, and cuDNN autotuning off
    (``Trainer(benchmark=True)`` leaves it set)."""
    gc.collect()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
    torch.backends.cudnn.benchmark = False


def run_contestants(
    contestants: dict[str, Callable[[], Run]], repeats: int, before_each: Callable[[], None]
) -> dict[str, list[Run]]:
    """Every contestant ``repeats`` times, each repeat in an order rotated by one (no contestant always
    runs right after the same other one), ``before_each`` before every run."""
    names = list(contestants)
    results: dict[str, list[Run]] = {name: [] for name in names}
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            before_each()
            results[name].append(contestants[name]())
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50000, help="synthetic training images")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps per contestant")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per contestant")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile-mode", default="reduce-overhead")
    parser.add_argument("--sync-check", action="store_true", help="only run the host-sync check")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the fast recipe without its callbacks and logger (eager and compiled) and with "
        "cudnn.benchmark, and print a host-side cProfile of its timed steps",
    )
    parser.add_argument("recipe_args", nargs="*", help="extra lit-dl overrides for every recipe, after --")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    smoke = not cuda
    if smoke:
        print("no CUDA device: running a tiny CPU smoke run instead of the benchmark (numbers mean nothing)")
        args.images, args.warmup, args.steps, args.repeats = 64, 1, 2, 1
        args.recipe_args += ["--model.init_args.width=4", "--trainer.precision=32-true"]
        args.recipe_args += ["--data.init_args.batch_size=16"]
    # The fast recipe's warmup is a fraction of the run, so it fits a benchmark run's few steps too.
    # NHWC conv backward crawls on small CPUs.
    fast: list[str] = []
    if smoke:
        fast.append("--model.init_args.channels_last=false")
    args.width = 4 if smoke else 64
    args.batch_size = 16 if smoke else 512
    args.precision = "32-true" if smoke else "bf16-mixed"
    args.channels_last = not smoke
    args.val_size = 16 if smoke else 5000
    per_epoch = (args.images - args.val_size) // args.batch_size
    if not smoke and args.warmup + args.steps > per_epoch:
        parser.error(
            f"--warmup + --steps = {args.warmup + args.steps} must stay within the first epoch ({per_epoch} steps "
            "of the fast recipe): an epoch end writes a checkpoint"
        )
    print(f"device: {torch.cuda.get_device_name() if cuda else 'cpu'}; torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        root, data = Path(tmp) / "runs", Path(tmp) / "data"
        write_fake_cifar(data, per_batch=(args.images + args.val_size) // 5, n_test=100)

        def fast_recipe(*extra: str, **options: bool) -> Run:
            return run_recipe("cifar10_resnet18_fast.yaml", root, data, args, [*fast, *extra], **options)

        if args.sync_check:
            if not cuda:
                print("sync check needs CUDA: skipped")
                return
            # the progress bar on, as in a user's run: it reads the logged loss every step
            run = fast_recipe("--trainer.enable_progress_bar=true", sync_check=True)
            print(
                f"sync check passed: {args.steps} fast-recipe steps without a host synchronisation "
                f"({run.images_per_s:.0f} images/s)"
            )
            return
        device = torch.device("cuda" if cuda else "cpu")
        images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8).to(device)
        labels = (torch.arange(args.images) % 10).to(device)

        contestants = {
            "hand-written eager": lambda: hand_written(args, images, labels, None),
            "shipped recipe": lambda: run_recipe(
                "cifar10_resnet18.yaml", root, data, args, ["--data.init_args.num_workers=0"] if smoke else []
            ),
            "fast recipe": lambda: fast_recipe(),
        }
        compiled = f"--model.init_args.compile={args.compile_mode}"
        if not smoke:
            contestants["hand-written compiled"] = lambda: hand_written(
                args, images, labels, args.compile_mode
            )
            contestants["fast recipe + compile"] = lambda: fast_recipe(compiled)
        if args.breakdown:
            bare = [
                "--trainer.callbacks=[]",
                "--trainer.logger=false",
                "--trainer.enable_checkpointing=false",
            ]
            contestants["fast, no callbacks/logger"] = lambda: fast_recipe(*bare)
            if not smoke:
                contestants["fast + compile, no callbacks/logger"] = lambda: fast_recipe(*bare, compiled)
            contestants["fast + cudnn.benchmark"] = lambda: fast_recipe("--trainer.benchmark=true")
            fast_recipe(profile=True)
        results = run_contestants(contestants, args.repeats, lambda: fresh_start(cuda))
    median = {name: statistics.median(r.images_per_s for r in v) for name, v in results.items()}
    print(
        f"batch {args.batch_size}, {args.warmup} warmup + {args.steps} timed steps, {args.repeats} repeats (median)"
    )
    for name, values in results.items():
        runs = ", ".join(f"{r.images_per_s:.0f}" for r in values)
        collected = ", ".join(f"{r.gc_ms:.0f} ms/{r.gc_collections}" for r in values)
        print(f"{name:24s}: {median[name]:9.0f} images/s  (runs: {runs}; gc in the timed steps: {collected})")
    print(
        "per-step clocks of each run (host: perf_counter; gpu: CUDA events; a long step on both = a host stall):"
    )
    for name, values in results.items():
        for i, run in enumerate(values):
            print(f"  {name} #{i + 1}: {run.steps}")
    print(f"ratio fast / hand-written (eager): {median['fast recipe'] / median['hand-written eager']:.2f}x")
    if "fast recipe + compile" in median:
        print(
            f"ratio fast+compile / hand-written compiled: {median['fast recipe + compile'] / median['hand-written compiled']:.2f}x"
        )
        best = max(median["fast recipe"], median["fast recipe + compile"])
        print(f"ratio fast (best) / shipped: {best / median['shipped recipe']:.2f}x")
    else:
        print(f"ratio fast / shipped: {median['fast recipe'] / median['shipped recipe']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
