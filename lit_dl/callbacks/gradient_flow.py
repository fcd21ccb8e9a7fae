"""Gradient-flow monitor: per-layer gradient norms, vanishing/exploding flags and a bar chart."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from lit_dl.callbacks._logging import log_scalars, tensorboard_writer, warn_once
from lit_dl.errors import ConfigError
from lit_dl.optim import named_parameters_with_modules

__all__ = ["GradientFlowMonitor"]


class GradientFlowMonitor(L.Callback):
    """Every ``every_n_steps`` optimizer steps, the L2 norm of each layer's weight gradient.

    A "layer" is every module owning a trainable parameter with two or more dimensions (Linear and
    conv kernels, embeddings), named by its module path; biases and norm parameters are left out.
    Norms are taken in ``on_before_optimizer_step``, after gradient accumulation, DDP's all-reduce
    and AMP's unscaling, as one stacked reduction and one device-to-host copy.

    Flags (Bengio et al., 1994, "Learning long-term dependencies with gradient descent is difficult";
    Glorot & Bengio, 2010, Sec. 4): a layer's gradient *vanishes* when its norm is below
    ``vanishing_ratio`` times the largest layer norm of that step, and *explodes* when its norm is
    above ``exploding_threshold`` or not finite. A rank-zero warning names newly flagged layers once.

    Logged at the step: ``grad_norm/<layer>``, ``grad_flow/vanishing`` and ``grad_flow/exploding``
    (numbers of flagged layers). Every ``image_every_n_steps`` a bar chart of ``log10`` of the norms
    (flagged bars in red) goes to TensorBoard as the image ``grad_flow/chart``; it needs matplotlib
    (the ``plot`` extra) and a TensorBoard logger, and is skipped with a one-time warning otherwise.

    The latest measurement stays readable in ``norms`` (layer → norm), ``vanishing`` and ``exploding``
    (layer names).

    Args:
        every_n_steps: Measure at every global step divisible by this.
        vanishing_ratio: Relative norm below which a layer's gradient counts as vanishing, in ``(0, 1)``.
        exploding_threshold: Absolute norm above which a layer's gradient counts as exploding (> 0).
        image_every_n_steps: Draw the chart at global steps divisible by this (a multiple of
            ``every_n_steps``); ``None`` never draws.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        vanishing_ratio: float = 1e-3,
        exploding_threshold: float = 1e3,
        image_every_n_steps: int | None = 1000,
    ) -> None:
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps must be >= 1, got {every_n_steps!r}")
        if not 0.0 < vanishing_ratio < 1.0:
            raise ConfigError(f"vanishing_ratio must be in (0, 1), got {vanishing_ratio!r}")
        if not exploding_threshold > 0:
            raise ConfigError(f"exploding_threshold must be > 0, got {exploding_threshold!r}")
        if image_every_n_steps is not None and (
            image_every_n_steps < 1 or image_every_n_steps % every_n_steps != 0
        ):
            raise ConfigError(
                f"image_every_n_steps must be None or a positive multiple of every_n_steps={every_n_steps}, "
                f"got {image_every_n_steps!r}"
            )
        self.every_n_steps = every_n_steps
        self.vanishing_ratio = float(vanishing_ratio)
        self.exploding_threshold = float(exploding_threshold)
        self.image_every_n_steps = image_every_n_steps
        self.norms: dict[str, float] = {}
        self.vanishing: list[str] = []
        self.exploding: list[str] = []
        self._warned: set[tuple[str, str]] = set()

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        step = trainer.global_step
        if step % self.every_n_steps != 0:
            return
        named = [
            (name.rpartition(".")[0] or name, p.grad)
            for name, _, _, p in named_parameters_with_modules(pl_module)
            if p.ndim >= 2 and p.grad is not None
        ]
        if not named:
            return
        norms = torch.stack([torch.linalg.vector_norm(g.detach().float()) for _, g in named]).cpu()
        self.norms = {name: float(v) for (name, _), v in zip(named, norms, strict=True)}
        finite = [v for v in self.norms.values() if np.isfinite(v)]
        top = max(finite, default=0.0)
        low, high = self.vanishing_ratio * top, self.exploding_threshold
        self.vanishing = [n for n, v in self.norms.items() if np.isfinite(v) and v < low]
        self.exploding = [n for n, v in self.norms.items() if not np.isfinite(v) or v > high]
        metrics = {f"grad_norm/{n}": v for n, v in self.norms.items()}
        metrics["grad_flow/vanishing"] = float(len(self.vanishing))
        metrics["grad_flow/exploding"] = float(len(self.exploding))
        log_scalars(trainer, metrics)
        self._warn(step)
        if self.image_every_n_steps is not None and step % self.image_every_n_steps == 0:
            self._log_chart(trainer, step)

    def _warn(self, step: int) -> None:
        for kind, layers in (("vanishing", self.vanishing), ("exploding", self.exploding)):
            new = [n for n in layers if (kind, n) not in self._warned]
            if new:
                self._warned.update((kind, n) for n in new)
                listed = ", ".join(f"{n} ({self.norms[n]:.2e})" for n in new)
                rank_zero_warn(f"GradientFlowMonitor: {kind} gradients at step {step} in {listed}")

    def _log_chart(self, trainer: L.Trainer, step: int) -> None:
        writer = tensorboard_writer(trainer)
        if writer is None or not trainer.is_global_zero:
            return
        try:
            image = self.render_chart()
        except ImportError as err:
            warn_once(f"GradientFlowMonitor: {err}; logging the gradient norms without the chart")
            return
        writer.add_image("grad_flow/chart", image, step, dataformats="HWC")

    def render_chart(self) -> np.ndarray:
        """The latest norms as a bar chart of ``log10(norm)``, an ``(H, W, 3)`` uint8 RGB image.

        Raises:
            ImportError: matplotlib is not installed (``pip install lit-dl[plot]``).
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "the gradient-flow chart needs matplotlib: pip install 'lit-dl[plot]'"
            ) from None
        names = list(self.norms)
        # log10 heights on a linear axis: a log-scaled axis costs several times more to draw.
        floor = -30.0
        heights = [
            float(np.log10(v)) if np.isfinite(v) and v > 0 else (floor if np.isfinite(v) else 30.0)
            for v in self.norms.values()
        ]
        flagged = set(self.vanishing) | set(self.exploding)
        fig = Figure(figsize=(max(4.0, 0.4 * len(names) + 1.5), 4), dpi=80)
        fig.subplots_adjust(left=0.15, right=0.97, top=0.9, bottom=0.4)
        ax = fig.add_subplot()
        ax.bar(range(len(names)), heights, color=["tab:red" if n in flagged else "tab:blue" for n in names])
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_ylabel("log10 gradient L2 norm")
        ax.set_title("gradient flow (red: vanishing or exploding)", fontsize=9)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()
