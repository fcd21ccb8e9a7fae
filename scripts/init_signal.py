"""How the signal travels through a deep ReLU MLP under Xavier (gain 1) and He init: the comparison of
He et al. (2015, "Delving Deep into Rectifiers", Sec. 2.2 and Fig. 3), through WeightInit.

    python scripts/init_signal.py                      # 20 ReLU layers of width 512, 1024 inputs

For each init it prints the std of every hidden layer's pre-activation (the Linear's output) on
standard-normal inputs, and the per-layer ratio (geometric mean of std[l+1] / std[l]). Theory on
square layers: Xavier with gain 1 draws Var(W) = 1/n and each ReLU halves the second moment, so the
std shrinks by 1/sqrt(2) = 0.707 per layer; He's Var(W) = 2/n keeps it (ratio 1).
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from lit_dl.callbacks import WeightInit
from lit_dl.nn import MLP

INITS = {"xavier_normal, gain 1": ("xavier_normal", 1.0), "he (kaiming_normal)": ("kaiming_normal", None)}


def preactivation_stds(
    scheme: str, gain: float | None, depth: int = 20, width: int = 512, batch: int = 1024, seed: int = 0
) -> list[float]:
    """The std of each hidden layer's pre-activation in a ``depth``-layer ReLU MLP after WeightInit."""
    model = MLP(width, 10, [width] * depth, activation="relu", norm="none")
    WeightInit(scheme=scheme, gain=gain, verbose=False).apply(model, seed=seed)  # type: ignore[arg-type]
    linears = [block[0] for block in model.features[1:]]
    stds: list[float] = []
    hooks = [m.register_forward_hook(lambda m, a, out: stds.append(float(out.std()))) for m in linears]
    with torch.no_grad():
        model(torch.randn(batch, width, generator=torch.Generator().manual_seed(seed + 1)))
    for hook in hooks:
        hook.remove()
    assert all(isinstance(m, nn.Linear) for m in linears) and len(stds) == depth
    return stds


def per_layer_ratio(stds: list[float]) -> float:
    """Geometric mean of ``stds[l + 1] / stds[l]``."""
    return (stds[-1] / stds[0]) ** (1.0 / (len(stds) - 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{args.depth}-layer ReLU MLP, width {args.width}, {args.batch} standard-normal inputs")
    print(f"{'init':<22} {'std layer 1':>11} {'std layer ' + str(args.depth):>12} {'ratio/layer':>11}")
    for name, (scheme, gain) in INITS.items():
        stds = preactivation_stds(scheme, gain, args.depth, args.width, args.batch, args.seed)
        print(f"{name:<22} {stds[0]:>11.4f} {stds[-1]:>12.3g} {per_layer_ratio(stds):>11.3f}")


if __name__ == "__main__":
    main()
