"""Where the linear LR scaling rule holds and where it breaks: batch size x base LR on the digits recipe.

Every cell is one run of ``configs/digits_mlp.yaml`` + an optimizer config (SGD with momentum by
default) built through the CLI, with a constant LR (the recipe's scheduler switched off) and a fixed
number of epochs, so a larger batch also means fewer steps. Two heat maps of the final validation
accuracy: the base LR used as is ("constant"), and the LR scaled linearly with the batch size
relative to ``--base-batch-size`` (``lr_scaling: linear``, Goyal et al., 2017). Scaling helps while
``lr x batch / base`` stays below SGD's stability limit and fails past it (Shallue et al., 2019).

    python scripts/lr_batch_sweep.py --out-dir docs/images               # 4 x 4 grid, 10 epochs
    python scripts/lr_batch_sweep.py --out-dir /tmp/sweep --small        # 2 x 2 grid, 3 epochs
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from lit_dl.cli import LitDLCLI, run_command

ROOT = Path(__file__).resolve().parents[1]
MODES = ("none", "linear")


def run_cell(
    batch_size: int, lr: float, mode: str, base: int, epochs: int, seed: int, optimizer: Path, root: Path
) -> float:
    """Final validation accuracy of one run of the digits recipe."""
    args = ["--config", str(ROOT / "configs/digits_mlp.yaml"), "--config", str(optimizer)]
    args += ["--model.init_args.lr_scheduler", "null", "--model.init_args.optimizer.init_args.lr", str(lr)]
    args += ["--model.init_args.lr_scaling", mode, "--model.init_args.base_batch_size", str(base)]
    args += ["--data.init_args.batch_size", str(batch_size), "--trainer.max_epochs", str(epochs)]
    args += ["--seed_everything", str(seed), "--trainer.default_root_dir", str(root)]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    cli = LitDLCLI(args=args, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return float(cli.trainer.callback_metrics["val/acc"])


def sweep(batch_sizes, lrs, base, epochs, seed, optimizer) -> dict[str, list[list[float]]]:
    """``{mode: acc[batch index][lr index]}``; at ``batch == base`` both modes are the same run."""
    grid = {mode: [[0.0] * len(lrs) for _ in batch_sizes] for mode in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for i, batch in enumerate(batch_sizes):
            for j, lr in enumerate(lrs):
                for mode in MODES:
                    if mode == "linear" and batch == base:
                        grid[mode][i][j] = grid["none"][i][j]
                        continue
                    grid[mode][i][j] = run_cell(batch, lr, mode, base, epochs, seed, optimizer, Path(tmp))
                    print(
                        f"batch {batch:5d} lr {lr:<6g} {mode:6s}: val acc {grid[mode][i][j]:.4f}", flush=True
                    )
    return grid


def plot(grid, batch_sizes, lrs, base, epochs, optimizer: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    low = min(min(row) for mode in MODES for row in grid[mode])
    vmin = max(0.0, round(low - 0.05, 1))  # spread the colours over the accuracies that occur
    titles = {"none": "constant LR (no scaling)", "linear": f"linear scaling: LR x batch / {base}"}
    for ax, mode in zip(axes, MODES, strict=True):
        image = ax.imshow(grid[mode], vmin=vmin, vmax=1.0, cmap="viridis", origin="lower", aspect="auto")
        for i in range(len(batch_sizes)):
            for j in range(len(lrs)):
                value = grid[mode][i][j]
                ax.text(
                    j,
                    i,
                    f"{value:.3f}",
                    ha="center",
                    va="center",
                    color="w" if value < (vmin + 1) / 2 else "k",
                )
        ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
        ax.set_yticks(range(len(batch_sizes)), [str(b) for b in batch_sizes])
        ax.set_xlabel(f"base LR ({optimizer.stem})")
        ax.set_title(titles[mode], fontsize=10)
    axes[0].set_ylabel("batch size")
    fig.colorbar(image, ax=axes, label=f"final val accuracy after {epochs} epochs")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=85, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--base-batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--optimizer", type=Path, default=ROOT / "configs/optimizer/momentum.yaml")
    parser.add_argument("--small", action="store_true", help="2 batch sizes x 2 LRs, 3 epochs")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    if args.small:
        args.batch_sizes, args.lrs, args.epochs = [32, 256], [0.03, 0.3], 3
    grid = sweep(args.batch_sizes, args.lrs, args.base_batch_size, args.epochs, args.seed, args.optimizer)
    out = args.out_dir / "lr_batch_sweep.png"
    plot(grid, args.batch_sizes, args.lrs, args.base_batch_size, args.epochs, args.optimizer, out)
    lines = ["| batch | " + " | ".join(f"LR {lr:g}: constant / linear" for lr in args.lrs) + " |"]
    lines.append("|---:|" + "---:|" * len(args.lrs))
    for i, batch in enumerate(args.batch_sizes):
        cells = [f"{grid['none'][i][j]:.3f} / {grid['linear'][i][j]:.3f}" for j in range(len(args.lrs))]
        lines.append(f"| {batch} | " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    (args.out_dir / "lr_batch_sweep.md").write_text(table)
    print(table + f"wrote {out}")


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
