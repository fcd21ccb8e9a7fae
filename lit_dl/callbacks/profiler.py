"""``torch.profiler`` driven by a schedule of plain numbers, as a Lightning callback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
from torch.profiler import ProfilerActivity, profile, schedule

from lit_dl.errors import ConfigError

__all__ = ["TorchProfiler"]


class TorchProfiler(L.Callback):
    """Profile a window of training steps with ``torch.profiler`` and write the traces into the run folder.

    Use it to see where a training step spends its time (data loading, forward, backward, optimizer,
    host-device copies, kernels) once a run is too slow; profile a few steps after warm-up, not a
    whole run. The schedule is ``torch.profiler.schedule``'s: skip ``skip_first`` steps, then
    ``repeat`` cycles of ``wait`` idle steps, ``warmup`` steps traced but discarded, ``active``
    steps recorded (``repeat=0`` cycles until training ends). The profiler steps once per training
    batch and is stopped and released as soon as the last cycle is written, so outside its window a
    step pays nothing.

    It records CPU activity always and CUDA activity when the run's device is a GPU. At the end of
    each cycle, every rank writes into ``<run folder>/profiler/`` (the run folder is
    ``trainer.log_dir``):

    - ``rank<R>.<step>.pt.trace.json``: a Chrome trace, opened by Perfetto (https://ui.perfetto.dev),
      ``chrome://tracing`` and TensorBoard's profiler plugin;
    - ``rank<R>.<step>.key_averages.txt``: ``key_averages()`` as a table sorted by self CUDA time on a
      GPU, self CPU time otherwise.

    If training ends inside an active window the steps recorded so far are written; if it ends
    before the first active step nothing is written and an info message says so.

    Args:
        wait: Idle steps at the start of each cycle.
        warmup: Steps traced and discarded before recording (the first steps carry one-off costs).
        active: Steps recorded per cycle (>= 1).
        repeat: Number of cycles; 0 repeats until training ends.
        skip_first: Steps skipped once before the first cycle.
        record_shapes: Record operator input shapes (the table is then grouped by shape too).
        profile_memory: Record tensor memory allocation and release.
        with_stack: Record Python source locations of operators (larger traces).
        row_limit: Rows of the summary table.
    """

    def __init__(
        self,
        wait: int = 1,
        warmup: int = 1,
        active: int = 3,
        repeat: int = 1,
        skip_first: int = 0,
        record_shapes: bool = False,
        profile_memory: bool = False,
        with_stack: bool = False,
        row_limit: int = 30,
    ) -> None:
        counts = {"wait": wait, "warmup": warmup, "repeat": repeat, "skip_first": skip_first}
        for name, value in counts.items():
            if value < 0:
                raise ConfigError(f"TorchProfiler {name} must be >= 0, got {value!r}")
        if active < 1:
            raise ConfigError(f"TorchProfiler active must be >= 1, got {active!r}")
        if row_limit < 1:
            raise ConfigError(f"TorchProfiler row_limit must be >= 1, got {row_limit!r}")
        self.wait = wait
        self.warmup = warmup
        self.active = active
        self.repeat = repeat
        self.skip_first = skip_first
        self.record_shapes = record_shapes
        self.profile_memory = profile_memory
        self.with_stack = with_stack
        self.row_limit = row_limit
        self.dirpath: Path | None = None
        self.written: list[Path] = []
        self._profiler: profile | None = None
        self._rank = 0
        self._sort_by = "self_cpu_time_total"

    @property
    def total_steps(self) -> int | None:
        """Steps after which the schedule is over (``None`` when it repeats forever)."""
        if self.repeat == 0:
            return None
        return self.skip_first + self.repeat * (self.wait + self.warmup + self.active)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        # Every rank must read log_dir (it is broadcast from rank 0).
        self.dirpath = Path(trainer.log_dir or trainer.default_root_dir) / "profiler"
        self._rank = trainer.global_rank

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.dirpath is None:
            return
        activities = [ProfilerActivity.CPU]
        on_gpu = trainer.strategy.root_device.type == "cuda"
        if on_gpu:
            activities.append(ProfilerActivity.CUDA)
        self._sort_by = "self_device_time_total" if on_gpu else "self_cpu_time_total"
        self.dirpath.mkdir(parents=True, exist_ok=True)
        self._profiler = profile(
            activities=activities,
            schedule=schedule(
                wait=self.wait,
                warmup=self.warmup,
                active=self.active,
                repeat=self.repeat,
                skip_first=self.skip_first,
            ),
            on_trace_ready=self._write,
            record_shapes=self.record_shapes,
            profile_memory=self.profile_memory,
            with_stack=self.with_stack,
        )
        self._profiler.start()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._profiler is None:
            return
        self._profiler.step()
        total = self.total_steps
        if total is not None and self._profiler.step_num >= total:
            self._stop()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._profiler is None:
            return
        step = self._profiler.step_num
        first_active = self.skip_first + self.wait + self.warmup
        self._stop()
        if not self.written:
            rank_zero_info(
                f"TorchProfiler: training ended after {step} steps, before the first active step "
                f"({first_active}); no trace was written"
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stop()

    def _stop(self) -> None:
        profiler, self._profiler = self._profiler, None
        if profiler is not None:
            profiler.stop()

    def _write(self, prof: profile) -> None:
        assert self.dirpath is not None  # set in setup before the profiler exists
        stem = self.dirpath / f"rank{self._rank}.{prof.step_num}"
        trace = stem.with_name(stem.name + ".pt.trace.json")
        prof.export_chrome_trace(str(trace))
        table = prof.key_averages(group_by_input_shape=self.record_shapes).table(
            sort_by=self._sort_by, row_limit=self.row_limit
        )
        summary = stem.with_name(stem.name + ".key_averages.txt")
        summary.write_text(table + "\n")
        self.written += [trace, summary]
        rank_zero_info(f"TorchProfiler: wrote {trace} and {summary.name}")
