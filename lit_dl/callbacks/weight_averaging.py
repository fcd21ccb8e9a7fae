"""Weight averaging (EMA, SWA) whose averaged weights are "the model" on every path.

Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` keeps an ``AveragedModel`` beside
the trained one, validates the averaged weights during fit (so the best checkpoint is chosen on
them) and writes them as each checkpoint's ``state_dict``, with the trained weights under
``current_model_state`` and the update counter (``n_averaged``) under ``averaging_state``. So
``lit-dl validate``, ``test``, ``predict``, ``export``, ``init_from`` and ``load_from_checkpoint``,
which read ``state_dict``, see the averaged weights; ``fit --ckpt_path`` (and ``doctor --ckpt_path``,
which checks that resume) goes on training the trained weights with the average restored beside them.

Five things differ from Lightning 2.6.6, three so that the averaged weights stay the model:

- Lightning's ``on_load_checkpoint`` also runs in the test that follows a fit in the same Trainer
  (``lit-dl fit``'s own test of the best checkpoint) and puts ``current_model_state``, the trained
  weights, back into the model: fit printed the trained weights' accuracy, ``lit-dl test`` on the
  same file the averaged ones'. Here it acts in fit only.
- After fit the model holds the averaged weights (Lightning copies them in at ``on_train_end``); a
  ``last.ckpt`` written after that point kept them as ``current_model_state`` too, so a run extended
  from it trained on from the average. Here that file keeps the trained weights there.
- Before the average's first update (``update_starting_at_step``, SWA's start epoch) Lightning
  validated and saved the average's starting copy, the weights at setup, as the model. Here the
  trained weights are the model until there is an average.
- The average is a copy of the weights alone: the hooks that other callbacks put on the model's
  modules (Lightning's PyTorchProfiler labels every module's forward with record functions, which
  cannot be deep-copied) are set aside while Lightning copies the model, and stay on the model.
- The count of updates is kept on the host: torch's ``AveragedModel.update_parameters`` reads its
  ``n_averaged`` tensor twice per update to tell the first update (a copy) from the others, a host
  synchronisation at every optimizer step on a GPU. The arithmetic is torch's; the EMA's runs as
  ``foreach`` kernels over all the tensors at once (bit-identical), not tensor by tensor from Python.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EMAWeightAveraging as _LightningEMA
from lightning.pytorch.callbacks import WeightAveraging
from lightning.pytorch.trainer.states import TrainerFn
from torch.optim.swa_utils import get_ema_avg_fn, get_swa_avg_fn

from lit_dl._lightning import exponential_average_

__all__ = ["ExponentialWeightAveraging", "SWAWeightAveraging"]


_HOOK_DICTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


@contextlib.contextmanager
def _hooks_set_aside(module: torch.nn.Module) -> Iterator[None]:
    """Every submodule without its forward and backward hooks inside the block, with the same hook
    dictionaries back afterwards (so the hooks' removable handles still work)."""
    saved = [(m, name, getattr(m, name)) for m in module.modules() for name in _HOOK_DICTS]
    for m, name, _ in saved:
        setattr(m, name, OrderedDict())
    try:
        yield
    finally:
        for m, name, hooks in saved:
            setattr(m, name, hooks)


_Slot = tuple[torch.nn.Module, torch.nn.Module, str, str]
"""(the average's submodule, the model's, the tensor's attribute name, "parameter" or "buffer")."""


def _tensor_slots(average: torch.nn.Module, model: torch.nn.Module) -> list[_Slot]:
    """Where each of ``model``'s parameters and buffers and its copy in ``average`` (a deep copy of
    ``model``) live, in torch's order (``parameters()``, then ``buffers()``; a tensor shared by two
    modules once). Read through the modules at each update, a buffer that a module replaces (rather
    than updates in place) is still followed."""
    seen: set[int] = set()
    slots: list[_Slot] = []
    for kind in ("parameter", "buffer"):
        for mine, theirs in zip(average.modules(), model.modules(), strict=True):
            members = theirs.named_parameters if kind == "parameter" else theirs.named_buffers
            for name, tensor in members(recurse=False):
                if id(tensor) not in seen:
                    seen.add(id(tensor))
                    slots.append((mine, theirs, name, kind))
    return slots


def _pair(slot: _Slot) -> tuple[torch.Tensor, torch.Tensor]:
    mine, theirs, name, _ = slot
    averaged = getattr(mine, name).detach()
    return averaged, getattr(theirs, name).detach().to(averaged.device)


class _AveragedIsTheModel(WeightAveraging):
    """The changes above, on top of any :class:`WeightAveraging`."""

    _trained_state: dict[str, torch.Tensor] | None = None
    _swapped = False  # the model holds the average during this validation
    _updates = 0  # the average's updates so far: torch's n_averaged, counted on the host
    # (the model, where its averaged and its copied tensors live): found once per fit, not in two walks
    # of the module tree at every step (most of an update's cost on a small model)
    _slots: tuple[torch.nn.Module, list[_Slot], list[_Slot]] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        with warnings.catch_warnings():
            # Lightning warns whenever the module overrides configure_model, because sharded layers
            # cannot be averaged; lit_dl's tasks only compile there (a subclass's own hook keeps it).
            if type(pl_module).configure_model.__module__.startswith("lit_dl."):
                warnings.filterwarnings("ignore", message="You're using the WeightAveraging callback")
            with _hooks_set_aside(pl_module):
                super().setup(trainer, pl_module, stage)
        if self._average_model is not None:  # fit: Lightning's hooks update through this
            self._updates, self._slots = 0, None
            self._average_model.update_parameters = self._update  # type: ignore[method-assign]

    def _update(self, model: torch.nn.Module) -> None:
        """torch's ``AveragedModel.update_parameters(model)`` with the first update (a copy) told from
        the others by the host-side count, so that no step reads ``n_averaged`` from the device."""
        average = self._average_model
        assert average is not None
        if self._slots is None or self._slots[0] is not model:
            slots = _tensor_slots(average.module, model)
            if average.use_buffers:
                self._slots = (model, slots, [])
            else:  # the buffers are copied, not averaged (as torch does)
                self._slots = (
                    model,
                    [slot for slot in slots if slot[3] == "parameter"],
                    [slot for slot in slots if slot[3] == "buffer"],
                )
        _, averaged_slots, copied_slots = self._slots
        with torch.no_grad():
            pairs = [_pair(slot) for slot in averaged_slots]
            if self._updates == 0:
                for averaged, current in pairs:
                    averaged.copy_(current)
            else:
                self._average_tensors(pairs)
            for averaged, current in map(_pair, copied_slots):
                averaged.copy_(current)
            average.n_averaged += 1
        self._updates += 1

    def _average_tensors(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """One update of each averaged tensor from its current value: torch's per-tensor path (the
        one it takes for ``avg_fn``, and SWA's on a device without ``foreach`` kernels)."""
        average = self._average_model
        assert average is not None
        avg_fn = average.avg_fn or get_swa_avg_fn()
        for averaged, current in pairs:
            averaged.copy_(avg_fn(averaged, current, average.n_averaged.to(averaged.device)))

    def _averaging(self) -> bool:
        """Whether the average holds anything yet (before its first update it is a copy of the
        weights at setup, which Lightning would validate and save as the model)."""
        return self._average_model is not None and self._updates > 0

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._swapped = self._averaging()
        if self._swapped:
            super().on_validation_epoch_start(trainer, pl_module)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._swapped:
            self._swapped = False
            super().on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._averaging():
            self._trained_state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
            super().on_train_end(trainer, pl_module)

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        averaging = self._averaging()
        super().on_save_checkpoint(trainer, pl_module, checkpoint)
        if "current_model_state" not in checkpoint:
            return
        if not averaging:  # nothing averaged yet: the trained weights are the model
            checkpoint["state_dict"] = checkpoint["current_model_state"]
        elif self._trained_state is not None:  # after fit the model holds the average
            checkpoint["current_model_state"] = copy.copy(self._trained_state)

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._trained_state = None
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
            if self._average_model is not None:  # the restored count, read once
                self._updates = int(self._average_model.n_averaged)
        # validate/test/predict (fit's own test included): the checkpoint's state_dict, the averaged
        # weights, is the model, and Lightning has loaded it already


class ExponentialWeightAveraging(_AveragedIsTheModel, _LightningEMA):
    """Lightning's :class:`~lightning.pytorch.callbacks.EMAWeightAveraging` (an exponential moving
    average of the weights and buffers, updated after every optimizer step) with the averaged
    weights as the model everywhere (see :mod:`lit_dl.callbacks.weight_averaging`).

    Its own name, so that ``EMAWeightAveraging`` in a config still means Lightning's class once lit_dl
    is imported; its saved state keeps Lightning's key (``EMAWeightAveraging``), so a checkpoint of
    either class resumes under the other with its update counter. The arguments are keyword-only:
    Lightning's class takes ``device`` first.

    Args:
        decay: Weight of the old average at each update (``0.999``: an average over about 1000 steps).
        update_every_n_steps: Update after every n-th optimizer step.
        update_starting_at_step: First optimizer step (0-based) that updates; ``None``: the first.
        update_starting_at_epoch: Also update at the end of every epoch from this one on.
        use_buffers: Average the buffers too (BatchNorm's running statistics); ``False`` copies them.
        device: Where the average lives; ``None``: beside the model.
        debias: Correct the average for its start (Kingma & Ba's bias correction, 2015): the plain
            average after ``k`` updates still gives the starting weights ``decay**k`` (at decay 0.99,
            83% after 19 steps, a digits epoch), so a short run validates and saves nearly its
            initial weights; the debiased one weights the ``k`` updates alone, and tends to the plain
            one as ``decay**k`` vanishes (see :meth:`decay_at`). Off: Lightning's update, bit for bit.
    """

    def __init__(
        self,
        *,
        decay: float = 0.999,
        update_every_n_steps: int = 1,
        update_starting_at_step: int | None = None,
        update_starting_at_epoch: int | None = None,
        use_buffers: bool = True,
        device: str | None = None,
        debias: bool = False,
    ) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        if update_every_n_steps < 1:
            raise ValueError(f"update_every_n_steps must be >= 1, got {update_every_n_steps!r}")
        super().__init__(
            device=device,
            use_buffers=use_buffers,
            decay=decay,
            update_every_n_steps=update_every_n_steps,
            update_starting_at_step=update_starting_at_step,
            update_starting_at_epoch=update_starting_at_epoch,
        )
        self.decay, self.use_buffers, self.device = decay, use_buffers, device
        self.debias = bool(debias)

    @property
    def state_key(self) -> str:
        return _LightningEMA.__qualname__

    def decay_at(self, updates: int) -> float:
        """The weight of the old average in the update that follows ``updates`` updates (the first,
        ``updates == 0``, copies the weights). ``decay``; with ``debias``,
        ``decay * (1 - decay**updates) / (1 - decay**(updates + 1))``, which makes the average after
        ``k`` updates ``sum_i (1 - decay) * decay**(k - i) * w_i / (1 - decay**k)`` exactly: every
        update's weights weighted as in the plain average, and none left to the starting copy."""
        if not self.debias or updates == 0:
            return self.decay
        return self.decay * (1.0 - self.decay**updates) / (1.0 - self.decay ** (updates + 1))

    def _average_tensors(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Lightning's EMA update, ``decay * average + (1 - decay) * current`` per tensor at this
        update's decay (:meth:`decay_at`), as three ``foreach`` kernels over the floating-point tensors
        of each device and dtype instead of four kernel launches per tensor from Python (bit-identical:
        the same multiplications and sum). The integer buffers (BatchNorm's ``num_batches_tracked``)
        take torch's per-tensor ``get_ema_avg_fn``, whose float result ``copy_`` truncates."""
        decay = self.decay_at(self._updates)
        groups: dict[tuple[torch.device, torch.dtype], tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        others = []
        for averaged, current in pairs:
            if averaged.is_floating_point() and current.dtype == averaged.dtype:
                group = groups.setdefault((averaged.device, averaged.dtype), ([], []))
                group[0].append(averaged)
                group[1].append(current)
            else:
                others.append((averaged, current))
        for averaged_list, current_list in groups.values():
            exponential_average_(averaged_list, current_list, decay)
        if others:
            ema = get_ema_avg_fn(decay)  # torch's per-tensor update, at this update's decay
            for averaged, current in others:
                averaged.copy_(ema(averaged, current, None))


class SWAWeightAveraging(_AveragedIsTheModel):
    """Stochastic weight averaging (Izmailov et al., 2018, "Averaging Weights Leads to Wider Optima
    and Better Generalization"): the equal-weight average of the weights after the last optimizer step
    of every epoch from ``swa_epoch_start`` on, on Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging` (its
    default average is SWA's), with the averaged weights as the model everywhere.

    Lightning's ``StochasticWeightAveraging`` is not the base: it validates and checkpoints the
    trained weights during fit and puts the average in only when training ends (so the best checkpoint
    and fit's own test would not be the averaged model), and it replaces the config's LR schedule with
    its own. Here the config's schedule trains; BatchNorm statistics are averaged with the weights
    (``use_buffers``) instead of recomputed in an extra epoch. The arguments are keyword-only:
    ``StochasticWeightAveraging(0.05)`` is an SWA learning rate, which here would be a start epoch.

    Args:
        swa_epoch_start: First epoch (0-based) whose end weights enter the average; a float in
            ``(0, 1)`` is that fraction of ``max_epochs``.
        use_buffers: Average the buffers too (BatchNorm's running statistics); ``False`` copies them.
        device: Where the average lives; ``None``: beside the model.
    """

    def __init__(
        self, *, swa_epoch_start: int | float = 0.75, use_buffers: bool = True, device: str | None = None
    ) -> None:
        is_fraction = isinstance(swa_epoch_start, float) and 0.0 < swa_epoch_start < 1.0
        if not (is_fraction or (isinstance(swa_epoch_start, int) and swa_epoch_start >= 0)):
            raise ValueError(
                f"swa_epoch_start must be an epoch >= 0 or a fraction in (0, 1), got {swa_epoch_start!r}"
            )
        super().__init__(device=device, use_buffers=use_buffers)
        self.swa_epoch_start, self.use_buffers, self.device = swa_epoch_start, use_buffers, device
        self._start_epoch = swa_epoch_start if isinstance(swa_epoch_start, int) else 0
        self._update_now = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if isinstance(self.swa_epoch_start, float):
            if trainer.max_epochs is None or trainer.max_epochs < 1:
                raise ValueError(
                    f"SWAWeightAveraging(swa_epoch_start={self.swa_epoch_start}) is a fraction of "
                    f"max_epochs, which is {trainer.max_epochs}; give the start as an epoch"
                )
            self._start_epoch = int(self.swa_epoch_start * trainer.max_epochs)
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # The epoch's weights enter at its last optimizer step, not at on_train_epoch_end: that hook runs
        # after the epoch's validation and checkpoint, which would then miss this epoch's update (and a
        # run resumed from that checkpoint would never make it). The step counter Lightning saves
        # (latest_update_step) records it.
        self._update_now = (
            trainer.current_epoch >= self._start_epoch and batch_idx + 1 >= trainer.num_training_batches
        )
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def should_update(self, step_idx: int | None = None, epoch_idx: int | None = None) -> bool:
        return step_idx is not None and self._update_now
