"""One row per epoch in the run folder's ``epochs.csv``, as timm's ``summary.csv``: runs compared in a
spreadsheet or ``pandas.read_csv``, without TensorBoard."""

from __future__ import annotations

import csv
import io
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

__all__ = ["EpochSummary"]

_FIRST = ("epoch", "step", "wall_time", "elapsed")


def _number(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item()  # once per metric and epoch: the only host reads this callback makes
    value = float(value)
    return repr(value) if math.isfinite(value) else str(value)


def _csv_text(columns: list[str], rows: list[dict[str, str]]) -> str:
    """``rows`` as CSV under a header of ``columns`` (what ``epochs.csv`` holds)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def _lr_columns(trainer: L.Trainer) -> dict[str, str]:
    """Each parameter group's LR, named as Lightning's ``LearningRateMonitor`` names its series
    (``lr-AdamW/decay``; ``lr-SGD`` for a single unnamed group)."""
    columns: dict[str, str] = {}
    for optimizer in trainer.optimizers:
        base = f"lr-{type(optimizer).__name__}"
        groups = optimizer.param_groups
        for i, group in enumerate(groups):
            if "name" in group:
                name = f"{base}/{group['name']}"
            else:
                name = base if len(groups) == 1 else f"{base}/pg{i + 1}"
            while name in columns:  # two optimizers of one class
                name += "-1"
            columns[name] = _number(group["lr"])
    return columns


class EpochSummary(L.Callback):
    """Writes ``<run folder>/epochs.csv``: a row at the end of each epoch (and of each validation
    inside fit), with ``epoch``, ``step`` (optimizer steps so far), ``wall_time`` (Unix seconds),
    ``elapsed`` (seconds of fit so far, the runs this one resumed included), every ``train/*`` and
    ``val/*`` value the module logged (``train/loss``: lit_dl's tasks log the mean over the epoch's
    last ``log_every_n_steps`` window), and each parameter group's LR when the epoch started,
    ``lr-<Optimizer>/<group>``: the epoch's LR under a per-epoch schedule, its first step's under a
    per-step one (Lightning steps a per-epoch schedule before the epoch's validation).

    A row is composed when the epoch (or validation) ends, on rank 0, from values Lightning already
    holds: nothing runs per step, and the only host reads are of the logged metrics, once per epoch.
    The rows so far are part of the checkpoint, so a resumed run's file (in its new run folder) holds
    the whole run, its first epochs included, without the epochs the resume repeats; an existing
    file in the folder is appended to, never truncated. Columns that appear later (a validation every
    few epochs) are added to the header.

    Not ``metrics.csv``: that is Lightning's ``CSVLogger``'s file, in the same run folder.

    Args:
        filename: The file's name in the run folder (``trainer.log_dir``).
    """

    def __init__(self, *, filename: str = "epochs.csv") -> None:
        if not filename or Path(filename).name != filename:
            raise ValueError(f"filename must be a file name without folders, got {filename!r}")
        self.filename = filename
        self.columns: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.path: Path | None = None
        self._started = 0.0
        self._elapsed_before = 0.0
        self._epoch_lrs: dict[str, str] = {}

    # The rows travel in the checkpoint as one CSV text (a plain string: weights_only loading reads it;
    # one pickled object, where a dict per row cost the writer a call per value, in every checkpoint).
    def state_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "csv": _csv_text(self.columns, self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.columns = list(state_dict.get("columns", []))
        if "csv" in state_dict:
            self.rows = [dict(row) for row in csv.DictReader(io.StringIO(state_dict["csv"]))]
        else:  # written before the rows were one text
            self.rows = [dict(row) for row in state_dict.get("rows", [])]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()
        log_dir = trainer.log_dir  # a broadcast under DDP: every rank asks, rank 0's answer wins
        if not trainer.is_global_zero:
            return
        self.path = Path(log_dir or trainer.default_root_dir) / self.filename
        if self.rows:  # resumed: the run so far, as the checkpoint recorded it
            self._write_all()
        elif self.path.is_file():  # a folder that already has a file: go on after its rows
            with self.path.open(newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(row) for row in reader]
        if self.rows and self.rows[-1].get("elapsed"):
            self._elapsed_before = float(self.rows[-1]["elapsed"])

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self._epoch_lrs = _lr_columns(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self._add_row(trainer, validated=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = self.rows[-1] if self.rows else None
        if last is None or last.get("step") != str(trainer.global_step):  # no validation at this step
            self._add_row(trainer, validated=False)

    def _add_row(self, trainer: L.Trainer, validated: bool) -> None:
        if not trainer.is_global_zero or self.path is None:
            return
        metrics = trainer.callback_metrics
        prefixes = ("train/", "val/") if validated else ("train/",)
        row = {
            "epoch": str(trainer.current_epoch),
            "step": str(trainer.global_step),
            "wall_time": f"{time.time():.3f}",
            "elapsed": f"{self._elapsed_before + time.monotonic() - self._started:.3f}",
            **{name: _number(metrics[name]) for name in sorted(metrics) if name.startswith(prefixes)},
            **(self._epoch_lrs or _lr_columns(trainer)),  # an epoch resumed midway did not start here
        }
        self.rows.append(row)
        new = [name for name in row if name not in self.columns]
        if new or not self.path.is_file():
            self.columns = [*(self.columns or _FIRST), *(n for n in new if n not in _FIRST)]
            self._write_all()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, self.columns, restval="").writerow(row)

    def _write_all(self) -> None:
        """The header and every row, written beside the file and renamed over it."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        with partial.open("w", newline="") as f:
            f.write(_csv_text(self.columns, self.rows))
        os.replace(partial, self.path)
