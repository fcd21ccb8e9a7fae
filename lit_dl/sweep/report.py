"""A sweep's results: the table of trials, the best trial's config, and Optuna's plots as PNGs."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["PLOTS", "best_config", "format_table", "trial_best", "write_plots"]

PLOTS = ("optimization_history.png", "param_importances.png", "contour.png", "slice.png")


def trial_best(trial: FrozenTrial, direction: str) -> float | None:
    """A trial's best metric: its value if complete, else the best value it reported before it stopped."""
    if trial.state == TrialState.COMPLETE and trial.value is not None:
        return trial.value
    finite = [v for v in trial.intermediate_values.values() if math.isfinite(v)]
    if not finite:
        return None
    return max(finite) if direction == "maximize" else min(finite)


def _state(trial: FrozenTrial) -> str:
    if trial.state == TrialState.FAIL and trial.user_attrs.get("diverged"):
        return "DIVERGED"
    return trial.state.name


def _short_names(names: list[str]) -> dict[str, str]:
    """``model.init_args.optimizer.init_args.lr`` -> ``lr`` where the last part names one parameter."""
    last = [n.rsplit(".", 1)[-1] for n in names]
    return {n: (s if last.count(s) == 1 else n) for n, s in zip(names, last, strict=True)}


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, str) and value.startswith("lit_dl://"):
        return value.removeprefix("lit_dl://")
    return str(value)


def format_table(study: optuna.Study) -> str:
    """One line per trial: number, state, best metric, parameters, run folder (relative to the sweep)."""
    metric = study.user_attrs.get("metric", "value")
    direction = study.user_attrs.get("direction", study.direction.name.lower())
    trials = study.get_trials(deepcopy=False)
    names = list(dict.fromkeys(name for t in trials for name in t.params))
    short = _short_names(names)
    header = ["trial", "state", f"best {metric}", *(short[n] for n in names), "run folder"]
    rows = []
    for t in trials:
        best = trial_best(t, direction)
        params = [_format(t.params[n]) if n in t.params else "-" for n in names]
        folder = t.user_attrs.get("run_folder", "-")
        rows.append([str(t.number), _state(t), "-" if best is None else f"{best:.4f}", *params, folder])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    counts = {
        s: sum(_state(t) == s for t in trials)
        for s in ("COMPLETE", "PRUNED", "DIVERGED", "FAIL", "RUNNING", "WAITING")
    }
    lines.append(", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n))
    return "\n".join(lines)


def best_config(study: optuna.Study, sweep_dir: Path) -> Path | None:
    """The ``config.yaml`` of the best complete trial (``lit-dl fit --config`` reruns it)."""
    try:
        best = study.best_trial
    except ValueError:  # no complete trial yet
        return None
    folder = best.user_attrs.get("run_folder")
    return sweep_dir / folder / "config.yaml" if folder else None


def write_plots(study: optuna.Study, sweep_dir: Path) -> tuple[list[Path], list[str]]:
    """Optuna's matplotlib plots in the sweep folder: the optimisation history, the parameter
    importances, and a contour of the two most important parameters (a slice plot with one).

    Returns:
        The files written, and why any plot was left out.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as vis
    except ImportError:
        return [], ["no plots: matplotlib is not installed (pip install 'lit-dl[sweep]')"]
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    written: list[Path] = []
    skipped: list[str] = []
    target = study.user_attrs.get("metric")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plots: list[tuple[str, Any]] = [
            (
                "optimization_history.png",
                lambda: vis.plot_optimization_history(study, target_name=target or "Objective Value"),
            )
        ]
        varied = [
            n
            for n in dict.fromkeys(k for t in complete for k in t.params)
            if len({repr(t.params.get(n)) for t in complete}) > 1
        ]
        if len(complete) >= 2 and varied:
            importances = optuna.importance.get_param_importances(study, params=varied)
            top = list(importances)[:2]
            plots.append(
                (
                    "param_importances.png",
                    lambda: vis.plot_param_importances(
                        study, params=varied, target_name=target or "Objective Value"
                    ),
                )
            )
            if len(top) == 2:
                plots.append(
                    (
                        "contour.png",
                        lambda: vis.plot_contour(study, params=top, target_name=target or "Objective Value"),
                    )
                )
            else:
                plots.append(
                    (
                        "slice.png",
                        lambda: vis.plot_slice(study, params=top, target_name=target or "Objective Value"),
                    )
                )
        else:
            skipped.append(
                "no importance or contour plot: fewer than 2 complete trials with different parameters"
            )
        for name, draw in plots:
            axes = draw()
            figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
            figure.set_size_inches(max(figure.get_figwidth(), 7), max(figure.get_figheight(), 5))
            tmp = sweep_dir / f".{name}.{os.getpid()}.tmp.png"
            figure.savefig(tmp, dpi=90, bbox_inches="tight")
            plt.close(figure)
            tmp.replace(sweep_dir / name)  # workers finishing together each write whole files
            written.append(sweep_dir / name)
    return written, skipped
