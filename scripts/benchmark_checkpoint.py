"""How long AtomicCheckpoint's saves stop training: synchronous writes against ``async_write: true``.

Fits a recipe twice per repeat, interleaved, once with each setting, and reports the time the
checkpoint callback's saving hooks took on the training thread (the stall training sees) and the
whole ``fit``. With ``async_write`` the hooks still build the checkpoint and copy its tensors, and the
worker thread's pickling competes with training for Python's GIL: what is left of the stall is what
this measures.

    python scripts/benchmark_checkpoint.py                                   # digits MLP, CPU
    python scripts/benchmark_checkpoint.py --fake-cifar --config configs/cifar10_resnet18_fast.yaml \\
        --epochs 3   # ResNet-18 on a GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lit_dl.callbacks import AtomicCheckpoint
from lit_dl.cli import LitDLCLI

ROOT = Path(__file__).resolve().parents[1]
SAVING_HOOKS = ("on_train_batch_end", "on_train_epoch_end", "on_validation_end", "on_train_end")


def fit(
    config: str, root: Path, epochs: int, async_write: bool, overrides: list[str]
) -> tuple[float, float, int]:
    """(seconds in the saving hooks, seconds of fit, files written) for one run."""
    args = ["--config", config, f"--trainer.default_root_dir={root}", f"--trainer.max_epochs={epochs}"]
    args += ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", *overrides]
    cli = LitDLCLI(args=args, run=False)
    callback = next(c for c in cli.trainer.callbacks if isinstance(c, AtomicCheckpoint))
    callback.async_write = async_write
    callback.last_min_seconds = 0.0  # a save at every epoch end (the bundle spaces last.ckpt's writes)
    spent: list[float] = []
    for hook in SAVING_HOOKS:
        original = getattr(callback, hook)

        def timed(*a, original=original, **k):
            start = time.perf_counter()
            original(*a, **k)
            spent.append(time.perf_counter() - start)

        setattr(callback, hook, timed)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    files = len(list(Path(callback.dirpath).glob("*.ckpt")))
    return sum(spent), time.perf_counter() - start, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "digits_mlp.yaml"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--fake-cifar", action="store_true", help="write fake CIFAR-10 files and train on them"
    )
    parser.add_argument("overrides", nargs="*", help="extra lit-dl overrides, after --")
    args = parser.parse_args()
    results: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        overrides = list(args.overrides)
        if args.fake_cifar:
            sys.path.insert(0, str(ROOT / "scripts"))
            from benchmark_gpu import write_fake_cifar

            write_fake_cifar(Path(tmp) / "data", per_batch=11000, n_test=1000)
            overrides = [f"--data.init_args.root={Path(tmp) / 'data'}", *overrides]
        for repeat in range(args.repeats):
            for async_write in (False, True):
                run_root = Path(tmp) / f"run-{repeat}-{async_write}"
                results[async_write].append(fit(args.config, run_root, args.epochs, async_write, overrides))
    print(f"{Path(args.config).name}, {args.epochs} epochs, {args.repeats} repeats (median)")
    for async_write, runs in results.items():
        hooks = statistics.median(r[0] for r in runs)
        total = statistics.median(r[1] for r in runs)
        print(
            f"async_write={async_write!s:5s}: {hooks * 1e3:8.1f} ms in the saving hooks "
            f"({hooks / args.epochs * 1e3:.1f} ms per epoch), fit {total:.2f} s, {runs[0][2]} files"
        )
    hooks = {a: statistics.median(r[0] for r in runs) for a, runs in results.items()}
    print(f"ratio of the stall, async / sync: {hooks[True] / hooks[False]:.2f}x")


if __name__ == "__main__":
    main()
