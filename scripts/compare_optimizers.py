"""Compare optimizers fairly: each at its own tuned LR (the same search budget for each), on 2-D
test surfaces and on a recipe's data over several seeds.

1. Trajectories of SGD, Momentum, Nesterov, AdaGrad, AdaDelta, RMSProp and Adam (the torch optimizers
   themselves) on an ill-conditioned, rotated quadratic and on the Rosenbrock valley, drawn over the
   contours with each path's end marked and the minimum starred: ``optimizer_paths_<surface>.png``.
   Each optimizer's LR is the best of ``--surface-budget`` log-spaced values (a grid sweep; the other
   settings as in ``SURFACES``): the final function value decides, a diverged path scores infinity.
   ``--noise`` adds seeded Gaussian noise to the gradients (a stand-in for minibatch noise).
2. A recipe (``--config``, the digits MLP by default) trained with each file of ``configs/optimizer/``,
   composed through the CLI exactly as ``lit-dl fit --config ... --config ...``: first a grid sweep
   of ``--budget`` log-spaced LRs per optimizer (seed 0), then the best LR once per ``--seeds`` seed
   (other seeds than the search's). ``optimizers_digits.png``: the LR searches (diverged runs marked)
   and each optimizer's best validation accuracy per seed with mean and spread;
   ``optimizers_digits.md``: the table.

    python scripts/compare_optimizers.py --out-dir docs/images
    python scripts/compare_optimizers.py --out-dir /tmp/cmp --max-epochs 5 --budget 3 --seeds 1 --skip-surfaces
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

import optuna
import torch

from lit_dl.cli import run_command
from lit_dl.cli.sweep import sweep_recipe
from lit_dl.sweep import Sweep, parse_sweep

ROOT = Path(__file__).resolve().parents[1]

# Rotated quadratic 0.5 * p^T A p with eigenvalues 1 and 25 (condition number 25), minimum at 0.
_ANGLE = math.pi / 6
_ROT = torch.tensor([[math.cos(_ANGLE), -math.sin(_ANGLE)], [math.sin(_ANGLE), math.cos(_ANGLE)]])
_A = _ROT @ torch.diag(torch.tensor([1.0, 25.0])) @ _ROT.T


def quadratic(p: torch.Tensor) -> torch.Tensor:
    """``0.5 pᵀAp``, A with eigenvalues 1 and 25 rotated by 30°; minimum 0 at the origin."""
    return 0.5 * torch.einsum("...i,ij,...j->...", p, _A.to(p.dtype), p)


def rosenbrock(p: torch.Tensor) -> torch.Tensor:
    """``(1 - x)² + 100 (y - x²)²`` (Rosenbrock, 1960); minimum 0 at (1, 1) at the end of a curved valley."""
    x, y = p[..., 0], p[..., 1]
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


# name -> (function, start, minimum, steps, plot extent, log-scaled contours, {optimizer: (class, kwargs)})
SURFACES = {
    "quadratic": (
        quadratic,
        (-4.0, 2.5),
        (0.0, 0.0),
        100,
        (-5, 5, -3.5, 3.5),
        False,
        {
            "SGD": (torch.optim.SGD, {"lr": 0.06}),
            "Momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
            "Nesterov": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
            "AdaGrad": (torch.optim.Adagrad, {"lr": 1.0}),
            "AdaDelta": (torch.optim.Adadelta, {"lr": 20.0, "rho": 0.9}),
            "RMSProp": (torch.optim.RMSprop, {"lr": 0.05}),
            "Adam": (torch.optim.Adam, {"lr": 0.2}),
        },
    ),
    "rosenbrock": (
        rosenbrock,
        (-1.5, 2.0),
        (1.0, 1.0),
        1500,
        (-2, 2, -1, 3),
        True,
        {
            "SGD": (torch.optim.SGD, {"lr": 1.5e-3}),
            "Momentum": (torch.optim.SGD, {"lr": 2e-4, "momentum": 0.9}),
            "Nesterov": (torch.optim.SGD, {"lr": 2e-4, "momentum": 0.9, "nesterov": True}),
            "AdaGrad": (torch.optim.Adagrad, {"lr": 0.3}),
            "AdaDelta": (torch.optim.Adadelta, {"lr": 1.0, "rho": 0.95}),
            "RMSProp": (torch.optim.RMSprop, {"lr": 0.005}),
            "Adam": (torch.optim.Adam, {"lr": 0.05}),
        },
    ),
}


def trajectory(fn, start, optimizer_cls, kwargs, steps: int, noise: float, seed: int) -> torch.Tensor:
    """Points ``(steps + 1, 2)`` visited by ``optimizer_cls(**kwargs)`` minimising ``fn`` from ``start``."""
    generator = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.tensor(start, dtype=torch.float64))
    optimizer = optimizer_cls([p], **kwargs)
    points = [p.detach().clone()]
    for _ in range(steps):
        optimizer.zero_grad()
        fn(p).backward()
        if noise > 0:
            p.grad += noise * torch.randn(2, generator=generator, dtype=p.dtype)
        optimizer.step()
        points.append(p.detach().clone())
    return torch.stack(points)


SURFACE_LRS = (1e-5, 1e2)  # the LR range searched for every optimizer on the surfaces
DIGITS_LRS = (1e-4, 3.0)  # ... and on the recipe's data
LR = "model.init_args.optimizer.init_args.lr"


def final_value(fn, start, cls, kwargs, steps: int, noise: float, seed: int) -> float:
    """``fn`` at the path's end; infinity for a path that diverged (NaN/inf)."""
    value = float(fn(trajectory(fn, start, cls, kwargs, steps, noise, seed)[-1]))
    return value if math.isfinite(value) else math.inf


def tune_surface(name: str, budget: int, noise: float, seed: int) -> dict[str, float]:
    """Each optimizer's best LR on surface ``name``: a grid sweep of ``budget`` log-spaced values."""
    fn, start, _, steps, _, _, optimizers = SURFACES[name]
    spec = parse_sweep(
        {"sampler": "grid", "params": {"lr": {"float": list(SURFACE_LRS), "log": True, "grid": budget}}},
        f"{name} LR search",
        ROOT,
    )
    best = {}
    for label, (cls, kwargs) in optimizers.items():
        study = optuna.create_study(sampler=spec.make_sampler(), direction="minimize")
        study.optimize(
            lambda trial, cls=cls, kwargs=kwargs: final_value(
                fn, start, cls, {**kwargs, **spec.suggest(trial)}, steps, noise, seed
            ),
            n_trials=budget,
        )
        best[label] = study.best_params["lr"]
    return best


def plot_surface(
    name: str, out_dir: Path, noise: float, seed: int, lrs: dict[str, float] | None = None
) -> list[tuple[str, float, float]]:
    """Draw every optimizer's path on surface ``name`` (``lrs`` replaces the LRs of ``SURFACES``), each
    path's end marked; return ``(optimizer, final f, distance to min)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    fn, start, minimum, steps, (x0, x1, y0, y1), log_levels, optimizers = SURFACES[name]
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, 300), torch.linspace(y0, y1, 300), indexing="xy")
    zs = fn(torch.stack([xs, ys], dim=-1).double())
    fig, ax = plt.subplots(figsize=(7, 5.2))
    if log_levels:
        levels = torch.logspace(-1, 3.5, 20).tolist()
        ax.contour(xs, ys, zs, levels=levels, norm=LogNorm(), cmap="Greys", linewidths=0.6)
    else:
        ax.contour(xs, ys, zs, levels=20, cmap="Greys", linewidths=0.6)
    results = []
    for label, (cls, kwargs) in optimizers.items():
        kwargs = {**kwargs, **({"lr": lrs[label]} if lrs else {})}
        path = trajectory(fn, start, cls, kwargs, steps, noise, seed)
        final = path[-1]
        value = float(fn(final))
        dist = float(torch.linalg.vector_norm(final - torch.tensor(minimum, dtype=final.dtype)))
        shown = path[torch.isfinite(path).all(dim=1)]
        text = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in kwargs.items())
        (line,) = ax.plot(
            shown[:, 0], shown[:, 1], "-", linewidth=1.2, alpha=0.8, label=f"{label} {text}: f={value:.2g}"
        )
        if len(shown):  # the end of the path, above every line
            end = shown[-1]
            ax.plot(end[0], end[1], "o", color=line.get_color(), markeredgecolor="k", markersize=6, zorder=7)
        results.append((label, value, dist))
    ax.plot(*start, "ks", markersize=6, label="start", zorder=6)
    ax.plot(*minimum, "r*", markersize=16, label="minimum", zorder=6)  # path ends that reached it lie on it
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    tuned = "LR tuned per optimizer" if lrs else "hand-set LRs"
    ax.set_title(
        f"{name}: {steps} steps from {start}, {tuned}" + (f", gradient noise {noise}" if noise else ""),
        fontsize=10,
    )
    ax.legend(fontsize=6, loc="lower right" if name == "rosenbrock" else "upper right")
    fig.tight_layout()
    fig.savefig(out_dir / f"optimizer_paths_{name}.png", dpi=85)
    plt.close(fig)
    return results


def _grid_sweep(params: dict, name: str, fit_args: list[str], sweep_dir: Path) -> optuna.Study:
    content = {
        "sampler": "grid",
        "pruner": "none",
        "metric": "val/acc",
        "direction": "maximize",
        "params": params,
    }
    return Sweep(parse_sweep(content, name, ROOT), fit_args, sweep_dir, sweep_recipe(), study_name=name).run()


def _value(trial) -> float:
    """A trial's best validation accuracy; NaN for a run that diverged."""
    return math.nan if trial.user_attrs.get("diverged") or trial.value is None else trial.value


def tune_recipe(
    config: str, optimizer: Path, budget: int, seeds: list[int], max_epochs: int | None, root: Path, extra=()
) -> dict:
    """One optimizer on the recipe: the LR search (seed 0), then the best LR once per seed."""
    fit_args = ["--config", str(config), "--config", str(optimizer), *extra]
    if max_epochs is not None:  # the recipe's cosine schedule follows the run length by itself
        fit_args += ["--trainer.max_epochs", str(max_epochs)]
    search = _grid_sweep(
        {LR: {"float": list(DIGITS_LRS), "log": True, "grid": budget}},
        f"{optimizer.stem}_lr",
        [*fit_args, "--seed_everything", "0"],
        root / f"{optimizer.stem}_lr",
    )
    points = sorted((t.params[LR], _value(t)) for t in search.get_trials())
    finite = [(lr, v) for lr, v in points if math.isfinite(v)]
    if not finite:
        return {"search": points, "lr": math.nan, "seeds": [math.nan] * len(seeds)}
    best_lr = max(finite, key=lambda p: p[1])[0]
    runs = _grid_sweep(
        {"seed_everything": list(seeds)},
        f"{optimizer.stem}_seeds",
        [*fit_args, f"--{LR}", repr(best_lr)],
        root / f"{optimizer.stem}_seeds",
    )
    return {"search": points, "lr": best_lr, "seeds": [_value(t) for t in runs.get_trials()]}


def _spread(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0


def plot_digits(results: dict[str, dict], out_dir: Path, budget: int, seeds: list[int], config: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_lr, ax_seeds) = plt.subplots(1, 2, figsize=(11, 4.2))
    names = list(results)
    for i, (name, r) in enumerate(results.items()):
        lrs = [lr for lr, _ in r["search"]]
        values = [v for _, v in r["search"]]
        (line,) = ax_lr.plot(lrs, values, "o-", label=name, markersize=4)
        diverged = [lr for lr, v in r["search"] if not math.isfinite(v)]
        ax_lr.plot(diverged, [0.0] * len(diverged), "x", color=line.get_color(), markersize=9)
        finite = [v for v in r["seeds"] if math.isfinite(v)]
        ax_seeds.plot([i] * len(finite), finite, "o", color=line.get_color(), alpha=0.6)
        mean, std = _spread(r["seeds"])
        ax_seeds.errorbar([i + 0.15], [mean], yerr=[std], fmt="D", color=line.get_color(), capsize=4)
        ndiv = len(r["seeds"]) - len(finite)
        if ndiv:
            ax_seeds.annotate(f"{ndiv} diverged", (i, 0.0), ha="center", fontsize=7)
    ax_lr.set(
        xscale="log",
        xlabel="LR",
        ylabel="best val accuracy (seed 0)",
        title=f"LR search: {budget} values per optimizer (x: diverged)",
    )
    ax_lr.legend(fontsize=7)
    ax_seeds.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    ax_seeds.set(ylabel="best val accuracy", title=f"tuned LR, seeds {seeds}: runs and mean ± std")
    for ax in (ax_lr, ax_seeds):
        ax.grid(alpha=0.3)
    fig.suptitle(Path(config).name, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "optimizers_digits.png", dpi=85)
    plt.close(fig)
    lines = [
        f"| optimizer config | tuned LR (of {budget}) | best val acc, mean ± std over seeds {seeds} | min | max | diverged |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        mean, std = _spread(r["seeds"])
        finite = [v for v in r["seeds"] if math.isfinite(v)]
        low, high = (min(finite), max(finite)) if finite else (math.nan, math.nan)
        lines.append(
            f"| {name} | {r['lr']:.3g} | {mean:.4f} ± {std:.4f} | {low:.4f} | {high:.4f} | "
            f"{len(r['seeds']) - len(finite)}/{len(r['seeds'])} |"
        )
    table = "\n".join(lines) + "\n"
    (out_dir / "optimizers_digits.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path("docs/images"))
    parser.add_argument("--config", default=str(ROOT / "configs/digits_mlp.yaml"), help="the recipe")
    parser.add_argument("--seed", type=int, default=0, help="gradient-noise seed on the surfaces")
    parser.add_argument(
        "--noise", type=float, default=0.0, help="std of Gaussian noise added to 2-D gradients"
    )
    parser.add_argument(
        "--surface-budget", type=int, default=25, help="LR values tried per optimizer on a surface"
    )
    parser.add_argument("--budget", type=int, default=6, help="LR values tried per optimizer on the recipe")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds of the tuned runs")
    parser.add_argument(
        "--optimizers",
        nargs="+",
        default=None,
        help="optimizer config files (default: all of configs/optimizer/)",
    )
    parser.add_argument("--max-epochs", type=int, default=None, help="shorten the recipe's runs")
    parser.add_argument("--skip-surfaces", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    args, extra = parser.parse_known_args()  # the rest goes to every run (--trainer.limit_train_batches 5)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_surfaces:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        for name in SURFACES:
            lrs = tune_surface(name, args.surface_budget, args.noise, args.seed)
            print(f"{name}: optimizer, tuned LR, final f, distance to the minimum")
            for label, f, dist in plot_surface(name, args.out_dir, args.noise, args.seed, lrs):
                print(f"  {label:9s} lr={lrs[label]:.3g}  f={f:.3e}  dist={dist:.3e}")
    if not args.skip_digits:
        optimizers = (
            [Path(p) for p in args.optimizers]
            if args.optimizers
            else sorted((ROOT / "configs/optimizer").glob("*.yaml"))
        )
        results = {}
        with tempfile.TemporaryDirectory() as runs:
            for optimizer in optimizers:
                r = tune_recipe(
                    args.config, optimizer, args.budget, args.seeds, args.max_epochs, Path(runs), extra
                )
                results[optimizer.stem] = r
                print(f"{optimizer.stem}: LR {r['lr']:.3g}, best val acc per seed {r['seeds']}", flush=True)
        print(plot_digits(results, args.out_dir, args.budget, args.seeds, args.config))


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
