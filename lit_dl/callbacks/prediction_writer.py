"""One predictions file in dataset order, however many processes predicted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

__all__ = ["PredictionWriter"]


class PredictionWriter(BasePredictionWriter):
    """Write the outputs of ``predict_step`` to ``<output_dir>/predictions.pt``, rows in dataset order.

    Each rank keeps its outputs and the dataset indices Lightning recorded for them (its predict
    loaders track the batch indices); at the epoch end the ranks gather both (``all_gather``: no
    shared filesystem needed across nodes), and rank 0 sorts the rows by index and writes one file,
    identical to the file one process writes. The file is a dict:

    - ``index``: ``(N,)`` int64, the dataset index of each row (``0 .. N-1`` for a whole split);
    - ``probabilities``: ``(N, C)``, ``predict_step``'s output (class probabilities for lit_dl tasks);
    - ``predicted_class``: ``(N,)`` int64, the arg-max class of each row.

    With several predict loaders the files are ``predictions_0.pt``, ``predictions_1.pt``, ...

    The arguments are keyword-only: Lightning's ``BasePredictionWriter`` takes ``write_interval``
    first, and here the interval is always the epoch (one file in dataset order), so
    ``PredictionWriter("epoch")`` is a ``TypeError`` rather than a folder named ``epoch``.

    Args:
        output_dir: Folder of the file; ``None``: the run folder (``trainer.log_dir``).
        filename: Name of the file (with one predict loader).
    """

    def __init__(self, *, output_dir: str | None = None, filename: str = "predictions.pt") -> None:
        super().__init__(write_interval="epoch")
        self.output_dir = output_dir
        self.filename = filename
        self.paths: list[Path] = []

    def write_on_epoch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        predictions: Sequence[Any],
        batch_indices: Sequence[Any],
    ) -> None:
        # Lightning unwraps the outputs of a single loader but not its batch indices.
        per_loader = [predictions] if len(batch_indices) == 1 else list(predictions)
        # log_dir is a collective call under DDP: every rank asks, rank 0's answer wins.
        folder = Path(self.output_dir if self.output_dir is not None else trainer.log_dir or ".")
        self.paths = []
        for k, (outputs, indices) in enumerate(zip(per_loader, batch_indices, strict=True)):
            rows, index = _rows_and_index(outputs, indices)
            rows, index = _gather(trainer, rows, index)
            name = self.filename if len(per_loader) == 1 else f"{Path(self.filename).stem}_{k}.pt"
            self.paths.append(folder / name)
            if trainer.is_global_zero:
                order = torch.argsort(index, stable=True)
                rows, index = rows[order], index[order]
                # a padding sampler (not lit_dl's) repeats samples: keep each index once
                first = torch.ones_like(index, dtype=torch.bool)
                first[1:] = index[1:] != index[:-1]
                rows, index = rows[first], index[first]
                record = {"index": index, "probabilities": rows}
                if rows.ndim == 2:
                    record["predicted_class"] = rows.argmax(dim=1)
                folder.mkdir(parents=True, exist_ok=True)
                torch.save(record, folder / name)
        rank_zero_info(f"Predictions saved to {', '.join(str(p) for p in self.paths)}")


def _rows_and_index(outputs: Sequence[Any], indices: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """This rank's outputs as one tensor and the dataset index of each row."""
    if not indices:
        raise RuntimeError(
            "PredictionWriter needs the batch indices Lightning records for DataLoader predict loaders; "
            "this predict loader is not a torch DataLoader"
        )
    if not all(isinstance(o, Tensor) for o in outputs):
        kinds = sorted({type(o).__name__ for o in outputs if not isinstance(o, Tensor)})
        raise TypeError(f"PredictionWriter writes tensor outputs of predict_step, got {', '.join(kinds)}")
    rows = torch.cat([o.detach().cpu() for o in outputs])
    index = torch.as_tensor([i for batch in indices for i in batch], dtype=torch.long)
    if index.numel() != rows.shape[0]:
        raise ValueError(
            f"predict_step returned {rows.shape[0]} rows for {index.numel()} samples; "
            "PredictionWriter needs one row per sample"
        )
    return rows, index


def _gather(trainer: L.Trainer, rows: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
    """Every rank's rows and indices, concatenated (on the CPU). Ranks may hold different row counts
    (the evaluation samplers give ranks whole batches), so each pads to the largest count first.
    (``torch.distributed.all_gather`` directly: Lightning's ``strategy.all_gather`` goes through an
    autograd-aware gather that torch 2.13 deprecates with a warning.)"""
    if trainer.world_size == 1 or not dist.is_initialized():
        return rows, index
    device = trainer.strategy.root_device  # NCCL gathers device tensors only
    world = dist.get_world_size()
    count = torch.tensor([rows.shape[0]], device=device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    most = max(sizes)
    gathered = []
    for local in (rows, index):
        padded = local.new_zeros((most, *local.shape[1:]))
        padded[: local.shape[0]] = local
        padded = padded.to(device)
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        gathered.append(torch.cat([part[:n].cpu() for part, n in zip(parts, sizes, strict=True)]))
    return gathered[0], gathered[1]
