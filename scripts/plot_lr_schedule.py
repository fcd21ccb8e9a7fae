"""Draw the LR (and momentum / Adam's beta1) of every parameter group over a whole run, without training.

Takes the same ``--config`` files (and ``--section.key value`` overrides) as ``lit-dl fit``. The model,
data module and Trainer are built exactly as for a run; step counts come from the real train loader
and Trainer settings (:func:`lit_dl.models.run_length.run_length`), and ``configure_optimizers`` and
the schedules' fitting to the run length happen as in a fit, so LR scaling and warmup checks apply. Then the optimizer and scheduler are stepped as
Lightning steps them (no gradients: the weights never change) and the values are recorded.

    python scripts/plot_lr_schedule.py --config configs/digits_mlp.yaml \\
        --config configs/lr_scheduler/warmup_cosine.yaml --out docs/images/lr_warmup_cosine.png
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from torch.optim.lr_scheduler import ReduceLROnPlateau

from lit_dl.cli import LitDLCLI, run_command
from lit_dl.models.run_length import fit_schedules_to_run, run_length


def _group_names(optimizer) -> list[str]:
    """Names as Lightning's ``LearningRateMonitor`` writes them: ``lr-<Optimizer>/<group name>``."""
    base = f"lr-{type(optimizer).__name__}"
    if len(optimizer.param_groups) == 1 and "name" not in optimizer.param_groups[0]:
        return [base]
    return [f"{base}/{group.get('name', f'pg{i + 1}')}" for i, group in enumerate(optimizer.param_groups)]


class _ScheduleRecorder(Callback):
    """Steps the optimizer and schedulers through the whole run at ``on_train_start``, then stops the fit."""

    def __init__(self) -> None:
        self.curves: dict[str, list[float]] = {}
        self.steps_per_epoch = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ValueError(f"expected one optimizer, got {len(trainer.optimizers)}")
        optimizer = trainer.optimizers[0]
        configs = trainer.lr_scheduler_configs
        for config in configs:
            if isinstance(config.scheduler, ReduceLROnPlateau):
                raise ValueError(
                    "ReduceLROnPlateau follows validation metrics; it cannot be drawn without training"
                )
        fit_schedules_to_run(trainer)  # the task does it in its own on_train_start, after this one
        total = run_length(trainer, "step")
        if math.isinf(total):
            raise ValueError("the run has no end (max_epochs=-1 and max_steps=-1); nothing to draw")
        self.steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
        names = _group_names(optimizer)
        for step in range(int(total)):
            for name, group in zip(names, optimizer.param_groups, strict=True):
                self.curves.setdefault(name, []).append(float(group["lr"]))
                if "betas" in group or "momentum" in group:
                    momentum = group["betas"][0] if "betas" in group else group["momentum"]
                    self.curves.setdefault(f"{name}-momentum", []).append(float(momentum))
            optimizer.step()  # no gradients: every parameter is skipped; keeps torch's call-order check happy
            epoch_end = (step + 1) % self.steps_per_epoch == 0
            for config in configs:
                count = step + 1 if config.interval == "step" else (step + 1) // self.steps_per_epoch
                if (config.interval == "step" or epoch_end) and count % config.frequency == 0:
                    config.scheduler.step()
        trainer.should_stop = True


def schedule_curves(cli_args: list[str]) -> tuple[dict[str, list[float]], int]:
    """LR (and ``<name>-momentum``) of every parameter group at every optimizer step of the run.

    Args:
        cli_args: Arguments as for ``lit-dl fit`` without the subcommand, e.g.
            ``["--config", "configs/digits_mlp.yaml", "--trainer.max_epochs", "5"]``.

    Returns:
        ``(curves, steps_per_epoch)``: ``curves`` maps the names ``LearningRateMonitor`` logs
        (``lr-AdamW/decay``, ``lr-AdamW/decay-momentum``) to one value per optimizer step, the value in
        force during that step.
    """
    recorder = _ScheduleRecorder()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            "--trainer.default_root_dir",
            tmp,
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.enable_model_summary",
            "false",
        ]
        cli = LitDLCLI(args=[*cli_args, *overrides], run=False)
        cli.trainer.callbacks.append(recorder)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return recorder.curves, recorder.steps_per_epoch


def plot(curves: dict[str, list[float]], steps_per_epoch: int, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    momentum = {k: v for k, v in curves.items() if k.endswith("-momentum")}
    lrs = {k: v for k, v in curves.items() if k not in momentum}
    rows = 2 if momentum else 1
    fig, axes = plt.subplots(
        rows,
        1,
        figsize=(7, 3.2 + 1.6 * (rows - 1)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [2, 1][:rows]},
    )
    for ax, group, label in ((axes[0, 0], lrs, "learning rate"), (axes[-1, 0], momentum, "momentum / beta1")):
        if not group:
            continue
        for i, (name, values) in enumerate(group.items()):
            # Groups often share one LR: dash the later curves so every group stays visible.
            ax.plot(values, label=name, linestyle=("-", "--", ":", "-.")[i % 4], linewidth=1.6)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel(f"optimizer step ({steps_per_epoch} per epoch)")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", required=True, help="YAML file, repeatable, as for fit")
    parser.add_argument("--out", type=Path, default=Path("lr_schedule.png"), help="PNG to write")
    args, overrides = parser.parse_known_args()
    cli_args = [item for path in args.config for item in ("--config", path)] + overrides
    curves, per_epoch = schedule_curves(cli_args)
    title = " + ".join(Path(p).stem for p in args.config) + (" " + " ".join(overrides) if overrides else "")
    plot(curves, per_epoch, args.out, title)
    steps = len(next(iter(curves.values())))
    lr_names = [k for k in curves if not k.endswith("-momentum")]
    summary = ", ".join(
        f"{k}: {curves[k][0]:.3g} -> max {max(curves[k]):.3g} -> {curves[k][-1]:.3g}" for k in lr_names
    )
    print(f"{steps} optimizer steps; {summary}; wrote {args.out}")


if __name__ == "__main__":
    run_command(main)  # bad input: one line, exit 2
