"""Time the default recipe's training loop against a hand-written PyTorch loop.

Both train the same MLP (same initial weights) on the same digits split with the same optimizer,
parameter groups, LR schedule, batch size and number of epochs, and both evaluate the validation
split after every epoch. The Lightning side runs the recipe exactly as `lit-dl fit` builds it from
configs/digits_mlp.yaml (logger, checkpointing, LR monitor), only with ``--trainer.*`` overrides given
on the command line. Timings cover the training loops only (no imports, no test pass).

    python scripts/benchmark_overhead.py [--epochs 30] [--repeats 3] [--progress-bar]

Prints the best time of each side over interleaved repeats (the run least disturbed by other
processes, as ``timeit`` reports) and their ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from lit_dl.cli import LitDLCLI

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_mlp.yaml"


def build(epochs: int, root: str, progress_bar: bool) -> LitDLCLI:
    return LitDLCLI(
        args=[
            "--config",
            str(CONFIG),
            f"--trainer.max_epochs={epochs}",
            f"--trainer.default_root_dir={root}",
            f"--trainer.enable_progress_bar={str(progress_bar).lower()}",
            "--trainer.enable_model_summary=false",
        ],
        run=False,
    )


def hand_written(cli: LitDLCLI, epochs: int, seed: int) -> float:
    """A plain PyTorch loop over the same model, data and optimizer settings as the recipe."""
    model = copy.deepcopy(cli.model.backbone)
    dm = cli.datamodule
    dm.setup("fit")
    x_train, y_train = dm.train_set.tensors
    x_val, y_val = dm.val_set.tensors
    optimizer = cli.model.optimizer_factory(_groups(cli.model, model))
    scheduler = cli.model.lr_scheduler_factory(optimizer) if cli.model.lr_scheduler_factory else None
    batch, n = dm.batch_size, x_train.shape[0]
    steps = n // batch if dm.drop_last else -(-n // batch)
    gen = torch.Generator().manual_seed(seed)
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
        if scheduler is not None:
            scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = total_loss = 0.0
            for i in range(0, x_val.shape[0], dm.eval_batch_size):
                logits = model(x_val[i : i + dm.eval_batch_size])
                target = y_val[i : i + dm.eval_batch_size]
                total_loss += float(F.cross_entropy(logits, target, reduction="sum"))
                correct += float((logits.argmax(-1) == target).sum())
    return time.perf_counter() - start


def _groups(task, backbone):
    """The recipe's decay / no-decay split, applied to a copy of its backbone."""
    names = task.decay_parameter_names()
    params = dict(backbone.named_parameters())
    decay = [params[k] for k, v in names.items() if v]
    no_decay = [params[k] for k, v in names.items() if not v]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def lightning(cli: LitDLCLI) -> float:
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--progress-bar", action="store_true", help="keep the TQDM progress bar on")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    plain, lit = [], []
    with tempfile.TemporaryDirectory() as root:
        for r in range(args.repeats):
            cli = build(args.epochs, root, args.progress_bar)
            plain.append(hand_written(cli, args.epochs, seed=r))
            cli = build(args.epochs, root, args.progress_bar)
            lit.append(lightning(cli))
    # min: the run least disturbed by other processes (as timeit reports); median for context
    p, q = min(plain), min(lit)
    print(f"epochs={args.epochs} repeats={args.repeats} progress_bar={args.progress_bar}")
    print(f"hand-written loop : {p:.3f} s (best of repeats; median {statistics.median(plain):.3f} s)")
    print(f"lit_dl recipe     : {q:.3f} s (best of repeats; median {statistics.median(lit):.3f} s)")
    print(f"ratio lit_dl / hand-written: {q / p:.2f}x")


if __name__ == "__main__":
    main()
