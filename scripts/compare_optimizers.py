"""Compare optimizers two ways: paths on 2-D test surfaces, and the digits recipe per optimizer config.

1. Trajectories of SGD, Momentum, Nesterov, AdaGrad, AdaDelta, RMSProp and Adam (the torch
   optimizers themselves) on an ill-conditioned, rotated quadratic and on the Rosenbrock valley,
   drawn over the contours: ``optimizer_paths_<surface>.png``. ``--noise`` adds seeded Gaussian noise
   to the gradients (a stand-in for minibatch noise); 0 gives the exact paths.
2. The default digits recipe (``configs/digits_mlp.yaml``) trained once per file in
   ``configs/optimizer/``, composed through the CLI exactly as ``lit-dl fit --config ... --config ...``:
   validation loss and accuracy curves of all of them in ``optimizers_digits.png`` and a Markdown table
   (final/best validation accuracy, best epoch, wall time) in ``optimizers_digits.md``.

    python scripts/compare_optimizers.py --out-dir docs/images --seed 0            # ~5 min on 2 cores
    python scripts/compare_optimizers.py --out-dir /tmp/cmp --max-epochs 5 --skip-surfaces
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_dl.cli import LitDLCLI, run_command

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


def plot_surface(name: str, out_dir: Path, noise: float, seed: int) -> list[tuple[str, float, float]]:
    """Draw every optimizer's path on surface ``name``; return ``(optimizer, final f, distance to min)``."""
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
        path = trajectory(fn, start, cls, kwargs, steps, noise, seed)
        ax.plot(path[:, 0], path[:, 1], ".-", markersize=2, linewidth=1.2, label=f"{label} {kwargs}")
        final = path[-1]
        dist = float(torch.linalg.vector_norm(final - torch.tensor(minimum, dtype=final.dtype)))
        results.append((label, float(fn(final)), dist))
    ax.plot(*start, "ko", markersize=6)
    ax.plot(*minimum, "r*", markersize=12)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_title(f"{name}: {steps} steps from {start}" + (f", gradient noise {noise}" if noise else ""))
    ax.legend(fontsize=6.5, loc="lower right" if name == "rosenbrock" else "upper right")
    fig.tight_layout()
    fig.savefig(out_dir / f"optimizer_paths_{name}.png", dpi=85)
    plt.close(fig)
    return results


def train_digits(config: Path, seed: int, max_epochs: int | None, runs_dir: Path) -> dict:
    """One ``fit`` of configs/digits_mlp.yaml + ``config`` through the CLI; the validation curves."""
    args = ["fit", "--config", str(ROOT / "configs/digits_mlp.yaml"), "--config", str(config)]
    args += ["--seed_everything", str(seed), "--test_after_fit", "false"]
    args += ["--trainer.default_root_dir", str(runs_dir / config.stem)]
    args += ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    if max_epochs is not None:
        # The recipe's cosine schedule follows the run length by itself.
        args += ["--trainer.max_epochs", str(max_epochs)]
    start = time.perf_counter()
    cli = LitDLCLI(args=args)
    wall = time.perf_counter() - start
    events = EventAccumulator(cli.trainer.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    loss = [e.value for e in events.Scalars("val/loss")]
    acc = [e.value for e in events.Scalars("val/acc")]
    best = max(range(len(acc)), key=acc.__getitem__)
    return {"loss": loss, "acc": acc, "best_epoch": best, "wall_s": wall}


def plot_digits(results: dict[str, dict], out_dir: Path, seed: int) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for name, r in results.items():
        epochs = range(len(r["loss"]))
        ax_loss.plot(epochs, r["loss"], label=name)
        ax_acc.plot(epochs, r["acc"], label=name)
    ax_loss.set(xlabel="epoch", ylabel="validation loss", yscale="log", title="digits MLP: val/loss")
    ax_acc.set(xlabel="epoch", ylabel="validation accuracy", title="digits MLP: val/acc")
    ax_acc.set_ylim(0.8, 1.0)
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_dir / "optimizers_digits.png", dpi=85)
    plt.close(fig)
    lines = [
        f"| optimizer config (seed {seed}) | final val acc | best val acc | best epoch "
        "| final val loss | wall s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['acc'][-1]:.4f} | {max(r['acc']):.4f} | {r['best_epoch']} | "
            f"{r['loss'][-1]:.4f} | {r['wall_s']:.1f} |"
        )
    table = "\n".join(lines) + "\n"
    (out_dir / "optimizers_digits.md").write_text(table)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=Path("docs/images"))
    parser.add_argument("--seed", type=int, default=0, help="training seed and gradient-noise seed")
    parser.add_argument(
        "--noise", type=float, default=0.0, help="std of Gaussian noise added to 2-D gradients"
    )
    parser.add_argument("--max-epochs", type=int, default=None, help="shorten the digits runs (default: 30)")
    parser.add_argument("--skip-surfaces", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not args.skip_surfaces:
        for name in SURFACES:
            print(f"{name}: optimizer, final f, distance to the minimum")
            for label, f, dist in plot_surface(name, args.out_dir, args.noise, args.seed):
                print(f"  {label:9s} f={f:.3e}  dist={dist:.3e}")
    if not args.skip_digits:
        results = {}
        with tempfile.TemporaryDirectory() as runs:
            for config in sorted((ROOT / "configs/optimizer").glob("*.yaml")):
                results[config.stem] = train_digits(config, args.seed, args.max_epochs, Path(runs))
                print(f"{config.stem}: final val acc {results[config.stem]['acc'][-1]:.4f}", flush=True)
        print(plot_digits(results, args.out_dir, args.seed))


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
