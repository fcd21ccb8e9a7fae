"""Bit-exact resume: every rank's RNG states go into the checkpoint and come back on resume."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from lit_dl._lightning import (
    drop_train_loader,
    forget_skipped_validation,
    open_next_epoch_after_resume_at_epoch_end,
)

__all__ = ["ExactResume", "capture_rng_state", "restore_rng_state"]


def capture_rng_state() -> dict[str, Any]:
    """This process's torch (CPU and every initialised CUDA device), numpy and Python RNG states, as
    tensors and plain values (loadable with ``torch.load(weights_only=True)``)."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(cuda),
        "numpy": {
            "name": str(np_name),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        # one tensor, not 625 ints: each pickled object costs the checkpoint writer a call
        "python": {
            "version": int(py_version),
            "state": torch.tensor(py_state, dtype=torch.int64),
            "gauss": py_gauss,
        },
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set this process's RNGs to ``state`` (from :func:`capture_rng_state`)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32)
    np.random.set_state((npy["name"], keys, npy["pos"], npy["has_gauss"], npy["gauss"]))
    py = state["python"]
    py_state = py["state"]
    if isinstance(py_state, torch.Tensor):
        py_state = py_state.tolist()
    random.setstate((py["version"], tuple(py_state), py["gauss"]))


class ExactResume(L.Callback):
    """Make a resumed run draw the same random numbers as the uninterrupted one.

    Every checkpoint holds the RNG states of every rank (torch CPU and CUDA, numpy, Python ``random``),
    captured when the checkpoint is written; a run resumed from it (``--ckpt_path``) sets each rank's
    RNGs back just before its first training batch, after everything that runs between restore and
    training (model construction, the sanity check). Dropout masks and any other draw from the global
    RNG then repeat bit for bit. The data order comes from :class:`lit_dl.data.resumable.EpochSampler`,
    whose position Lightning restores through the loader's ``state_dict``.

    It also routes around Lightning #20550 (see :func:`_rebuild_train_loader_on_resume`), and mends
    the loop's bookkeeping after a resume from a checkpoint written at an epoch's last batch (see
    :func:`lit_dl._lightning.open_next_epoch_after_resume_at_epoch_end`): the checkpoints that run
    writes hold the same loop progress as the uninterrupted run's, so a run can be resumed again and
    again and still end at the uninterrupted run's step with its weights.

    A checkpoint from a different number of processes restores rank 0's states on every rank, with a
    warning: the data shards change with the world size anyway, so such a resume is not exact.
    """

    def __init__(self) -> None:
        self._fitting: L.Trainer | None = None
        self._loaded: list[dict[str, Any]] | None = None
        self._resumed_at_epoch_end = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._fitting = trainer

    def state_dict(self) -> dict[str, Any]:
        local = capture_rng_state()
        trainer = self._fitting
        # Lightning builds the checkpoint dict on every rank (only rank 0 writes it): a collective is safe.
        if trainer is not None and trainer.world_size > 1 and torch.distributed.is_initialized():
            states: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(states, local)
            return {"rng": states}
        return {"rng": [local]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = list(state_dict["rng"])

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.ckpt_path is not None:
            _rebuild_train_loader_on_resume(trainer)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._resumed_at_epoch_end = trainer.ckpt_path is not None and (
            open_next_epoch_after_resume_at_epoch_end(trainer)
        )
        if self._loaded is None:
            return
        states, self._loaded = self._loaded, None
        if len(states) != trainer.world_size:
            rank_zero_warn(
                f"ExactResume: the checkpoint holds RNG states of {len(states)} processes, this run has "
                f"{trainer.world_size}; every rank takes rank 0's states and the resume is not exact"
            )
            restore_rng_state(states[0])
            return
        restore_rng_state(states[trainer.global_rank])

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._resumed_at_epoch_end:
            self._resumed_at_epoch_end = False
            forget_skipped_validation(trainer)


def _rebuild_train_loader_on_resume(trainer: L.Trainer) -> None:
    """Route around Lightning #20550 (checked on lightning 2.6.6).

    Reading ``trainer.estimated_stepping_batches`` in ``configure_optimizers`` (the warmup schedules
    do) builds the train loader before the checkpoint's loop state is restored; ``FitLoop.setup_data``
    then keeps that loader and never hands it the saved ``state_dict``, so a mid-epoch resume silently
    restarts the epoch's order. Called from ``on_fit_start`` (after ``configure_optimizers``, before the
    loops are restored), dropping the early loader makes the fit loop build it again after the restore,
    where it loads the saved position. The loader is rebuilt from ``train_dataloader()`` with the same
    arguments, so the estimate taken from the first one still holds.
    """
    if trainer.train_dataloader is not None:
        drop_train_loader(trainer)
