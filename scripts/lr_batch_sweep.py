"""Where the linear LR scaling rule holds and where it breaks: batch size x base LR, as one grid sweep.

Every cell is a trial of a ``lit-dl sweep`` (grid sampler, no pruning) of a recipe (``--config``, the
digits MLP by default) + an optimizer config (SGD with momentum by default), with a constant LR (the
recipe's scheduler switched off) and a fixed number of epochs, so a larger batch also means fewer
steps. Each cell runs once per seed; the heat maps show the mean best validation accuracy over the
seeds (``± std`` in the table), the base LR used as is ("constant") and scaled linearly with the batch
size relative to ``--base-batch-size`` (``lr_scaling: linear``, Goyal et al., 2017). A run that diverges
(NaN/inf) is a result: its cell is marked, not dropped. Scaling helps while ``lr x batch / base`` stays
below SGD's stability limit and fails past it (Shallue et al., 2019).

The runs use the default callback bundle (``--callbacks``, ``lit_dl://callbacks/default.yaml``), not
the recipe's own list: the default recipe also keeps an exponential moving average of its weights and
validates that, and an average over a fixed number of steps (decay 0.99: about 100) reaches further
back into a run the fewer steps it takes, so the grid would measure the average as much as the LR
rule: with it, batch 512 at LR 0.01 reads 0.202 (0.413 without), and at LR 0.1 scaled to 1.6 the
average smooths over the instability the rule runs into (0.920, against 0.848 without).
``--callbacks recipe`` keeps the recipe's callbacks.

    python scripts/lr_batch_sweep.py --out-dir docs/images                 # 4 x 4 grid, 10 epochs, 3 seeds
    python scripts/lr_batch_sweep.py --out-dir /tmp/sweep --small          # 2 x 2 grid, 3 epochs, 1 seed
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

from lit_dl.cli import run_command
from lit_dl.cli.sweep import sweep_recipe
from lit_dl.sweep import Sweep, parse_sweep

ROOT = Path(__file__).resolve().parents[1]
MODES = ("none", "linear")
BATCH = "data.init_args.batch_size"
LR = "model.init_args.optimizer.init_args.lr"
MODE = "model.init_args.lr_scaling"
SEED = "seed_everything"


DEFAULT_CALLBACKS = "lit_dl://callbacks/default.yaml"


def run_sweep(
    config, optimizer, batch_sizes, lrs, base, epochs, seeds, sweep_dir: Path, extra=(), callbacks="recipe"
) -> dict:
    """``{(batch, lr, mode): [best val acc per seed, NaN for a diverged run]}`` from one grid sweep;
    ``callbacks``: a callback list config for every run, or ``"recipe"`` for the recipe's own."""
    params = {BATCH: list(batch_sizes), LR: list(lrs), MODE: list(MODES), SEED: list(seeds)}
    content = {
        "sampler": "grid",
        "pruner": "none",
        "metric": "val/acc",
        "direction": "maximize",
        "params": params,
    }
    spec = parse_sweep(content, "lr_batch_sweep", ROOT)
    fit_args = ["--config", str(config), "--config", str(optimizer), "--model.init_args.lr_scheduler", "null"]
    fit_args += ["--model.init_args.base_batch_size", str(base), "--trainer.max_epochs", str(epochs)]
    if callbacks != "recipe":
        fit_args.append(f"--trainer.callbacks={callbacks}")
    fit_args += list(extra)
    study = Sweep(spec, fit_args, sweep_dir, sweep_recipe(), study_name="lr_batch_sweep").run()
    cells: dict[tuple, list[float]] = {}
    for t in study.get_trials():
        key = (t.params[BATCH], t.params[LR], t.params[MODE])
        diverged = t.user_attrs.get("diverged")
        cells.setdefault(key, []).append(math.nan if diverged or t.value is None else t.value)
    return cells


def summarize(values: list[float]) -> tuple[float, float, int]:
    """``(mean, std, diverged count)`` over the finite values (NaN mean if every run diverged)."""
    finite = [v for v in values if math.isfinite(v)]
    mean = statistics.fmean(finite) if finite else math.nan
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return mean, std, len(values) - len(finite)


def cell_text(values: list[float]) -> str:
    mean, std, diverged = summarize(values)
    if math.isnan(mean):
        return f"diverged ({diverged}/{len(values)})"
    text = f"{mean:.3f}" + (f" ± {std:.3f}" if len(values) > 1 else "")
    return text + (f" ({diverged}/{len(values)} diverged)" if diverged else "")


def plot(cells, batch_sizes, lrs, base, epochs, seeds, optimizer: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    means = {
        m: np.array([[summarize(cells[(b, lr, m)])[0] for lr in lrs] for b in batch_sizes]) for m in MODES
    }
    finite = np.concatenate([v[np.isfinite(v)] for v in means.values()])
    vmin = max(0.0, round(float(finite.min()) - 0.05, 1)) if finite.size else 0.0
    titles = {"none": "constant LR (no scaling)", "linear": f"linear scaling: LR x batch / {base}"}
    for ax, mode in zip(axes, MODES, strict=True):
        grid = np.ma.masked_invalid(means[mode])
        cmap = plt.get_cmap("viridis").copy()
        cmap.set_bad("lightgrey")
        image = ax.imshow(grid, vmin=vmin, vmax=1.0, cmap=cmap, origin="lower", aspect="auto")
        for i, b in enumerate(batch_sizes):
            for j, lr in enumerate(lrs):
                mean, std, diverged = summarize(cells[(b, lr, mode)])
                if math.isnan(mean):
                    label = "diverged"
                else:
                    label = f"{mean:.3f}" + (f"\n±{std:.3f}" if len(seeds) > 1 else "")
                    label += f"\n{diverged} div" if diverged else ""
                dark = math.isfinite(mean) and mean < (vmin + 1) / 2
                ax.text(j, i, label, ha="center", va="center", fontsize=8, color="w" if dark else "k")
        ax.set_xticks(range(len(lrs)), [f"{lr:g}" for lr in lrs])
        ax.set_yticks(range(len(batch_sizes)), [str(b) for b in batch_sizes])
        ax.set_xlabel(f"base LR ({Path(optimizer).stem})")
        ax.set_title(titles[mode], fontsize=10)
    axes[0].set_ylabel("batch size")
    fig.colorbar(image, ax=axes, label=f"best val accuracy in {epochs} epochs, mean of {len(seeds)} seeds")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=85, bbox_inches="tight")
    plt.close(fig)


def table(cells, batch_sizes, lrs) -> str:
    lines = ["| batch | " + " | ".join(f"LR {lr:g}: constant / linear" for lr in lrs) + " |"]
    lines.append("|---:|" + "---:|" * len(lrs))
    for b in batch_sizes:
        row = [f"{cell_text(cells[(b, lr, 'none')])} / {cell_text(cells[(b, lr, 'linear')])}" for lr in lrs]
        lines.append(f"| {b} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/digits_mlp.yaml"), help="the recipe")
    parser.add_argument("--optimizer", default="lit_dl://optimizer/momentum.yaml")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    parser.add_argument("--base-batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--callbacks",
        default=DEFAULT_CALLBACKS,
        help="the callbacks of every run (default: the bundle, without the default recipe's weight "
        "average); 'recipe': the recipe's own",
    )
    parser.add_argument("--small", action="store_true", help="2 batch sizes x 2 LRs, 3 epochs, seed 0")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/images"))
    parser.add_argument(
        "--sweep-dir", type=Path, default=None, help="keep the trials here (default: a temporary folder)"
    )
    args, extra = parser.parse_known_args()  # the rest goes to every run (--trainer.limit_train_batches 5)
    if args.small:
        args.batch_sizes, args.lrs, args.epochs, args.seeds = [32, 256], [0.03, 0.3], 3, [0]
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = args.sweep_dir or Path(tmp) / "lr_batch_sweep"
        cells = run_sweep(
            args.config,
            args.optimizer,
            args.batch_sizes,
            args.lrs,
            args.base_batch_size,
            args.epochs,
            args.seeds,
            sweep_dir,
            extra,
            args.callbacks,
        )
    out = args.out_dir / "lr_batch_sweep.png"
    plot(
        cells, args.batch_sizes, args.lrs, args.base_batch_size, args.epochs, args.seeds, args.optimizer, out
    )
    text = table(cells, args.batch_sizes, args.lrs)
    (args.out_dir / "lr_batch_sweep.md").write_text(text)
    print(text + f"wrote {out}")


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
