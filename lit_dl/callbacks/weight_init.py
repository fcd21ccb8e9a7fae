"""Activation-aware weight initialisation as a Lightning callback: the YAML switch of the networks'
own ``init_weights``."""

from __future__ import annotations

import weakref
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from lit_dl.nn.init import (
    SCHEMES,
    InitRecord,
    Mode,
    Scheme,
    check_init_options,
    init_module,
    marked_modules,
    plan_module,
)

__all__ = ["SCHEMES", "InitRecord", "Scheme", "WeightInit"]


class WeightInit(L.Callback):
    """Initialise every Linear and Conv1d/2d/3d weight for the activation that follows it.

    Each lit_dl network knows its own activations and residual branches and initialises itself
    (:meth:`lit_dl.nn.SelfInitializing.init_weights`); this callback calls it with its options, and
    walks any other network's module tree (see :mod:`lit_dl.nn.init`): the next activation after a
    layer in an ``nn.Sequential``, skipping norm, dropout and pooling. A layer whose activation the
    walk cannot see (a child of a custom module whose ``forward`` may call ``F.gelu``) keeps its
    weights (PyTorch's default) and the table says ``default  unknown``, unless the scheme needs no
    activation (a forced scheme with ``gain``, or ``torch_default``).

    With ``scheme="auto"`` (the classic recipe): layers feeding tanh, sigmoid or nothing nonlinear
    get Xavier/Glorot uniform with that activation's gain (Glorot & Bengio, 2010, "Understanding the
    difficulty of training deep feedforward neural networks", Eq. 16); layers feeding ReLU or
    LeakyReLU get He/Kaiming normal with that block's negative slope (He et al., 2015, "Delving Deep
    into Rectifiers", Sec. 2.2). A classifier head followed by nothing gets Xavier with gain 1.
    A forced scheme uses the same gain unless ``gain`` is given: ``scheme: xavier_normal`` with
    ``gain: 1.0`` is Glorot & Bengio's init on any network, the comparison He et al. (2015, Fig. 3)
    made. Biases start at zero, norm scales at one and shifts at zero.

    Weights that were loaded (a checkpoint, ``init_from``: :func:`lit_dl.nn.init_marks.mark_initialized`)
    are left alone with everything inside their module, including parameters it shares with other
    modules; rank 0 logs what was left alone.

    It acts in ``setup("fit")``: before a checkpoint is restored (a resumed run keeps the checkpoint's
    weights bit for bit) and before DDP broadcasts rank 0's weights; once per model object, so a
    second ``fit`` on the same model continues from the trained weights. The random numbers come from
    a private ``torch.Generator`` (drawn on the CPU, then copied to the layer's device), so every rank
    and every device type gets the same weights and the global RNG stream that feeds dropout and
    shuffling is left as it was. Its seed is ``seed``, or when ``None`` rank 0's
    ``torch.initial_seed()`` (the ``seed_everything`` value) broadcast to all ranks. Rank 0 logs a
    table of what was done. ``torch_default`` calls each layer's own ``reset_parameters()``
    (PyTorch's default init, biases included) on a CPU copy of the layer, drawing from the CPU
    generator alone (seeded from the same seed), so no CUDA generator is touched.

    Args:
        scheme: ``"auto"`` (by activation, as above) or one scheme for every layer: ``xavier_uniform``,
            ``xavier_normal``, ``kaiming_uniform``, ``kaiming_normal``, ``orthogonal``, ``torch_default``.
        mode: Which fan He/Kaiming init keeps the variance of: ``"fan_in"`` (forward activations) or
            ``"fan_out"`` (backward gradients); ``None``: each network's own (``fan_in``; ResNet:
            ``fan_out``, as torchvision).
        gain: One gain for every layer instead of each activation's (``torch.nn.init.calculate_gain``);
            ``None``: each activation's.
        zero_init_residual: Start every residual branch at zero (the last norm of the branch, or its
            last conv/Linear where no norm ends it; Goyal et al., 2017, "Accurate, Large Minibatch
            SGD", Sec. 5.1). ``False`` still zeroes those of a network built with its own
            ``zero_init_residual=True``.
        seed: Seed of the initialisation; ``None`` takes the run's seed (see above).
        verbose: Log the table of initialised layers (rank 0, once).
    """

    def __init__(
        self,
        scheme: Scheme = "auto",
        mode: Literal["fan_in", "fan_out"] | None = None,
        gain: float | None = None,
        zero_init_residual: bool = False,
        seed: int | None = None,
        verbose: bool = True,
    ) -> None:
        check_init_options(scheme, mode, gain)
        self.scheme = scheme
        self.mode: Mode | None = mode
        self.gain = gain
        self.zero_init_residual = zero_init_residual
        self.seed = seed
        self.verbose = verbose
        self._done: weakref.WeakSet[nn.Module] = weakref.WeakSet()

    def __getstate__(self) -> dict:
        # A WeakSet does not pickle (ddp_spawn pickles callbacks); a new process starts afresh.
        state = self.__dict__.copy()
        state["_done"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._done = weakref.WeakSet()

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or pl_module in self._done:
            return
        seed = self.seed if self.seed is not None else torch.initial_seed()
        seed = trainer.strategy.broadcast(seed, src=0)
        records = self.apply(pl_module, seed)
        self._done.add(pl_module)
        skipped = self.skipped(pl_module)
        if skipped:
            listed = "; ".join(f"{name} (set by {by})" for name, by in skipped.items())
            rank_zero_info(f"WeightInit: left alone, already initialised: {listed}")
        if self.verbose and records:
            rank_zero_info(_format_table(records))

    def skipped(self, model: nn.Module) -> dict[str, str]:
        """The marked (loaded) modules :meth:`apply` leaves alone: module name -> what set their weights."""
        return marked_modules(model)

    def plan(self, model: nn.Module) -> list[InitRecord]:
        """What :meth:`apply` would do to ``model``, without touching it (marked modules left out)."""
        return plan_module(model, self.scheme, self.mode, self.gain, isinstance(model, L.LightningModule))

    def apply(self, model: nn.Module, seed: int = 0) -> list[InitRecord]:
        """Initialise ``model`` in place with ``seed`` and return one record per weight layer.

        A LightningModule's children are taken as networks whose outputs its loss reads (their last
        layer feeds nothing nonlinear); each lit_dl network among them runs its own ``init_weights``.
        """
        generator = torch.Generator().manual_seed(int(seed))
        return init_module(
            model,
            self.scheme,
            self.mode,
            self.gain,
            True if self.zero_init_residual else None,
            generator,
            children_output=isinstance(model, L.LightningModule),
        )


def _format_table(records: list[InitRecord]) -> str:
    """A fixed-width text table of ``records`` (layer, shape, scheme, activation, gain)."""
    rows = [("layer", "shape", "scheme", "activation", "gain")]
    rows += [
        (
            r.layer,
            "x".join(map(str, r.shape)),
            r.scheme,
            r.activation,
            "-" if r.gain is None else f"{r.gain:.4f}",
        )
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "WeightInit:\n" + "\n".join(lines)
