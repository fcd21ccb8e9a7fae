"""Checks on one training batch, run on a copy of the model (the original and its files are untouched).

One forward and backward pass under ``torch.autograd.detect_anomaly`` records the logits, the loss, the
output of every ReLU-like and saturating (sigmoid/tanh-like) activation, as :mod:`lit_dl.nn.layers` classifies
them (registered ones too), and every weight layer's gradient; each check reads that record. The timing check fetches a few batches and times a few training steps.
"""

from __future__ import annotations

import itertools
import math
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.utilities import move_data_to_device
from torch import Tensor, nn

from lit_dl.doctor.context import Context, copy_task
from lit_dl.doctor.findings import Finding
from lit_dl.models import ClassificationTask
from lit_dl.nn.init import layers_with_activation
from lit_dl.nn.layers import can_die, saturates

__all__ = ["BATCH_CHECKS", "BatchRecord", "record_batch", "run_batch_checks"]

INIT_LOSS_TOLERANCE = 0.5
"""``init_loss`` warns when the loss at init is off ln(num_classes) by more than this fraction of it."""
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5
GRAD_RATIO_BAND = (1e-2, 1e2)
INPUT_BOUND_MARGIN = 1.25
"""``input_bound`` warns when fetching a batch takes this many times longer than a training step (a
margin, so that equal times measured on a busy machine do not flip the verdict)."""


@dataclass
class BatchRecord:
    """What one forward/backward pass on a batch showed."""

    logits: Tensor | None = None
    target: Tensor | None = None
    loss: float = math.nan
    relu_fired: dict[str, Tensor] = field(default_factory=dict)  # per unit: fired for some sample
    saturated: dict[str, float] = field(default_factory=dict)  # fraction of outputs within 1% of a bound
    grad_norm: dict[str, float] = field(default_factory=dict)  # weight layers in order: |dL/d(output)|
    error: str | None = None  # the forward/backward pass failed with this
    bad_labels: bool = False  # labels outside 0..num_classes-1: the pass was not run


def _units_fired(output: Tensor) -> Tensor:
    dims = [d for d in range(output.ndim) if d != 1] if output.ndim > 1 else []
    return (output > 0).any(dim=dims) if dims else output > 0


def _bounds(module: nn.Module) -> tuple[float, float] | None:
    """The values a saturating activation tends to at -inf and +inf, read off the module itself (so a
    registered activation or a ``Hardtanh(min_val, max_val)`` gets its own); ``None`` if it cannot say."""
    device = next(itertools.chain(module.parameters(), module.buffers()), torch.empty(0)).device
    try:
        with torch.no_grad():
            ends = module(torch.tensor([-1e4, 1e4], device=device)).flatten()
    except Exception:  # an activation that does not take a flat float tensor: leave it out
        return None
    if ends.numel() != 2 or not bool(ends.isfinite().all()) or float(ends[0]) == float(ends[1]):
        return None
    low, high = sorted(float(v) for v in ends)
    return low, high


def _saturation(bounds: tuple[float, float], output: Tensor) -> float:
    low, high = bounds
    margin = 0.01 * (high - low)
    return float(((output < low + margin) | (output > high - margin)).float().mean())


def _forward_site(caught: list[warnings.WarningMessage]) -> str:
    """Where anomaly mode says the failing op ran in forward: `` (in SigmoidBackward0, forward at file:line)``."""
    for w in caught:
        text = str(w.message)
        match = re.search(r"Error detected in (\w+)", text)
        frames = re.findall(r'File "([^"]+)", line (\d+)', text)
        if match and frames:
            path, line = frames[-1]
            return f" (in {match.group(1)}, forward at {Path(path).name}:{line})"
    return ""


def split_batch(batch: Any) -> tuple[Any, Tensor]:
    """``(inputs, target)`` of a ``(x, y)`` batch."""
    x, y = batch
    return x, y


def record_batch(task: ClassificationTask, batch: Any) -> BatchRecord:
    """One train-mode forward and backward pass of ``task`` (modified in place: pass a copy) on ``batch``
    under anomaly detection, recording what the batch checks read."""
    record = BatchRecord()
    handles = []

    def relu_hook(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def fn(module: nn.Module, args: Any, output: Tensor) -> None:
            fired = _units_fired(output.detach())
            prev = record.relu_fired.get(name)
            record.relu_fired[name] = fired if prev is None else prev | fired

        return fn

    def saturation_hook(name: str, bounds: tuple[float, float]) -> Callable[[nn.Module, Any, Tensor], None]:
        def fn(module: nn.Module, args: Any, output: Tensor) -> None:
            record.saturated[name] = _saturation(bounds, output.detach())

        return fn

    for name, module in task.named_modules():
        if can_die(module):
            handles.append(module.register_forward_hook(relu_hook(name)))
        elif saturates(module) and (bounds := _bounds(module)) is not None:
            handles.append(module.register_forward_hook(saturation_hook(name, bounds)))

    def grad_hook(name: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def fn(module: nn.Module, args: Any, output: Tensor) -> None:
            if isinstance(output, Tensor) and output.requires_grad:

                def keep(grad: Tensor) -> None:
                    record.grad_norm[name] = float(grad.detach().float().norm())

                output.register_hook(keep)

        return fn

    for name, layer, _ in layers_with_activation(task.backbone):
        handles.append(layer.register_forward_hook(grad_hook(f"backbone.{name}")))
    task.train()
    task.zero_grad(set_to_none=True)
    x, y = split_batch(batch)
    record.target = y
    if (
        not y.dtype.is_floating_point
        and y.ndim == 1
        and (int(y.min()) < 0 or int(y.max()) >= task.num_classes)
    ):
        record.bad_labels = True  # cross-entropy would raise (a device-side assert on CUDA)
        for h in handles:
            h.remove()
        return record
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
            anomaly = torch.autograd.detect_anomaly(check_nan=True)
        with anomaly, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logits = task(x)
            loss = task.compute_loss(logits, y)
            loss.backward()
    except (RuntimeError, IndexError, ValueError) as err:
        record.error = str(err).strip().splitlines()[0] + _forward_site(caught)
        return record
    finally:
        for h in handles:
            h.remove()
    record.logits, record.target, record.loss = logits.detach(), y, float(loss.detach())
    order = [f"backbone.{name}" for name, _, _ in layers_with_activation(task.backbone)]
    record.grad_norm = {name: record.grad_norm[name] for name in order if name in record.grad_norm}
    return record


def check_anomaly(ctx: Context, rec: BatchRecord) -> Finding:
    """Forward + backward under ``torch.autograd.detect_anomaly``: NaN/inf gradients, in-place
    modification of a tensor autograd still needs."""
    if rec.bad_labels:
        return Finding("anomaly", "skip", "not run: labels outside num_classes (see labels)")
    if rec.error is not None:
        fix = (
            "replace the in-place op (x += ..., relu_(...), inplace=True) on that tensor with an out-of-place one"
            if "inplace" in rec.error
            else "find the op named above (anomaly mode prints where it ran in forward)"
        )
        return Finding("anomaly", "error", f"forward/backward failed: {rec.error}", fix)
    return Finding("anomaly", "ok", f"forward/backward on one batch: loss {rec.loss:.4g}, finite gradients")


def check_labels(ctx: Context, rec: BatchRecord) -> Finding:
    """Labels of the batch vs ``num_classes``."""
    y = rec.target
    if y is None:
        return Finding("labels", "skip", "no targets in the batch")
    if y.dtype.is_floating_point or y.ndim != 1:
        return Finding("labels", "skip", f"targets are {tuple(y.shape)} {y.dtype}, not class indices")
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= ctx.task.num_classes:
        return Finding(
            "labels",
            "error",
            f"batch labels span {lo}..{hi}, outside 0..{ctx.task.num_classes - 1} (num_classes={ctx.task.num_classes})",
            f"--model.init_args.num_classes {hi + 1}",
            {"min": lo, "max": hi},
        )
    return Finding("labels", "ok", f"labels {lo}..{hi} within num_classes={ctx.task.num_classes}")


def check_softmax_output(ctx: Context, rec: BatchRecord) -> Finding:
    """The network's outputs are probabilities or log-probabilities (rows summing to one) while the
    loss expects logits: the behavioural twin of the static ``softmax_head`` check."""
    if type(ctx.task).compute_loss is not ClassificationTask.compute_loss:
        return Finding("softmax_output", "skip", f"{type(ctx.task).__name__} overrides compute_loss")
    if rec.logits is None:
        return Finding("softmax_output", "skip", "the forward pass failed")
    z = rec.logits.float()
    probs = bool((z >= 0).all()) and torch.allclose(z.sum(-1), torch.ones(len(z)), atol=1e-4)
    log_probs = bool((z <= 0).all()) and torch.allclose(z.logsumexp(-1), torch.zeros(len(z)), atol=1e-4)
    if probs or log_probs:
        what = "probabilities (rows >= 0 summing to 1)" if probs else "log-probabilities (logsumexp 0)"
        return Finding(
            "softmax_output",
            "error",
            f"the network outputs {what}, but the loss is cross-entropy on logits and applies log-softmax again",
            "return logits: drop the softmax/log_softmax at the end of forward/build_backbone",
        )
    return Finding("softmax_output", "ok", "outputs are unnormalised logits")


def check_init_loss(ctx: Context, rec: BatchRecord) -> Finding:
    """Loss at initialisation vs ln(num_classes), the loss of a uniform prediction (Karpathy, 2019,
    "A Recipe for Training Neural Networks": verify loss @ init)."""
    if rec.logits is None:
        return Finding("init_loss", "skip", "the forward pass failed")
    expected = math.log(ctx.task.num_classes)
    data = {"loss": rec.loss, "expected": expected, "logit_std": float(rec.logits.float().std())}
    if ctx.checkpoint is not None:
        return Finding(
            "init_loss",
            "skip",
            f"the weights come from a checkpoint, not an initialisation (loss {rec.loss:.3f} on the batch)",
            data=data,
        )
    if not math.isfinite(rec.loss):
        return Finding(
            "init_loss", "error", f"loss at init is {rec.loss}", "check the inputs and the init scale", data
        )
    if abs(rec.loss - expected) > INIT_LOSS_TOLERANCE * expected:
        return Finding(
            "init_loss",
            "warn",
            f"loss at init {rec.loss:.3f} vs ln({ctx.task.num_classes}) = {expected:.3f} for a uniform guess; "
            f"the logits' std is {data['logit_std']:.3g}: the network starts confidently wrong",
            "scale the classifier head's init down (zero it, or xavier with a small gain)",
            data,
        )
    return Finding(
        "init_loss",
        "ok",
        f"loss at init {rec.loss:.3f} vs ln({ctx.task.num_classes}) = {expected:.3f}",
        data=data,
    )


def check_dead_relu(ctx: Context, rec: BatchRecord) -> Finding:
    """Fraction of ReLU units that output zero for every sample of the batch (Lu et al., 2019)."""
    if not rec.relu_fired:
        return Finding("dead_relu", "skip", "no ReLU modules")
    fractions = {n: 1.0 - float(f.float().mean()) for n, f in rec.relu_fired.items()}
    worst = max(fractions, key=fractions.__getitem__)
    if fractions[worst] > DEAD_FRACTION:
        return Finding(
            "dead_relu",
            "warn",
            f"{fractions[worst]:.0%} of the units of {worst} are zero for the whole batch at init",
            "He init (--config configs/callbacks/weight_init.yaml), a smaller bias, or --model.init_args.activation leaky_relu",
            fractions,
        )
    return Finding(
        "dead_relu",
        "ok",
        f"worst layer {worst}: {fractions[worst]:.0%} dead units on the batch",
        data=fractions,
    )


def check_saturation(ctx: Context, rec: BatchRecord) -> Finding:
    """Fraction of the outputs of saturating (sigmoid/tanh-like) activations within 1% of their bounds,
    where the gradient vanishes."""
    if not rec.saturated:
        return Finding("saturation", "skip", "no saturating (sigmoid/tanh-like) activations")
    worst = max(rec.saturated, key=rec.saturated.__getitem__)
    frac = rec.saturated[worst]
    if frac > SATURATED_FRACTION:
        return Finding(
            "saturation",
            "warn",
            f"{frac:.0%} of the outputs of {worst} are saturated (within 1% of a bound) at init",
            "Xavier init for tanh/sigmoid (--config configs/callbacks/weight_init.yaml) or normalised inputs/norm layers",
            rec.saturated,
        )
    return Finding(
        "saturation", "ok", f"worst layer {worst}: {frac:.0%} saturated outputs", data=rec.saturated
    )


def check_gradient_ratio(ctx: Context, rec: BatchRecord) -> Finding:
    """Norm of the loss gradient reaching the first weight layer's output over the last's: how much of
    the backward signal survives the way down; far below 1 is vanishing, far above exploding
    (Glorot & Bengio, 2010, Sec. 4.2; Hochreiter, 1991)."""
    grads = rec.grad_norm
    if len(grads) < 2:
        return Finding("gradient_ratio", "skip", "fewer than two weight layers on the gradient path")
    names = list(grads)
    first, last = grads[names[0]], grads[names[-1]]
    ratio = first / last if last > 0 else math.inf
    data = {"first": names[0], "last": names[-1], "ratio": ratio, "grad_norm": grads}
    low, high = GRAD_RATIO_BAND
    if not low <= ratio <= high:
        kind = "vanishing" if ratio < low else "exploding"
        fix = _norm_fix(ctx.task) or "norm layers, residual connections or activation-matched init"
        return Finding(
            "gradient_ratio",
            "warn",
            f"{kind} gradients: the loss gradient at the output of {names[0]} has {ratio:.3g}x the norm of the one at "
            f"{names[-1]}",
            fix,
            data,
        )
    return Finding(
        "gradient_ratio", "ok", f"loss-gradient norm at the first/last layer output: {ratio:.3g}", data=data
    )


def _norm_fix(task: ClassificationTask) -> str | None:
    return (
        "--model.init_args.norm before (BatchNorm before each activation)" if "norm" in task.hparams else None
    )


BATCH_CHECKS: tuple[Callable[[Context, BatchRecord], Finding], ...] = (
    check_anomaly,
    check_labels,
    check_softmax_output,
    check_init_loss,
    check_dead_relu,
    check_saturation,
    check_gradient_ratio,
)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_step(task: ClassificationTask, optimizer: torch.optim.Optimizer, batch: Any) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = task.training_step(batch, 0)
    loss.backward()
    optimizer.step()


def time_steps(
    task: ClassificationTask, loader: Any, device: torch.device, steps: int = 3
) -> tuple[float, float]:
    """Seconds per batch to fetch from ``loader`` and per training step of ``task`` (a copy), both
    medians over ``steps`` after a warm-up (worker start-up and first-call costs left out)."""
    optimizer = task.optimizer_factory(task.parameter_groups())
    iterator: Iterator[Any] = iter(loader)
    batches, load_times = [], []
    for i in range(steps + 1):
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            break
        if i:
            load_times.append(time.perf_counter() - start)
        batches.append(move_data_to_device(batch, device))
    compute_times = []
    for i, batch in enumerate(batches):
        _sync(device)
        start = time.perf_counter()
        _train_step(task, optimizer, batch)
        _sync(device)
        if i:
            compute_times.append(time.perf_counter() - start)
    median = lambda v: sorted(v)[len(v) // 2] if v else math.nan  # noqa: E731
    return median(load_times), median(compute_times)


def check_input_bound(ctx: Context, loader: Any, device: torch.device) -> Finding:
    """Data-loading time per batch vs compute time per training step: is the run input-bound?"""
    load, compute = time_steps(copy_task(ctx.task).to(device), loader, device)
    datamodule = getattr(ctx.trainer, "datamodule", None) if ctx.trainer is not None else None
    return input_bound_finding(load, compute, device, datamodule)


def input_bound_finding(load: float, compute: float, device: torch.device, datamodule: Any = None) -> Finding:
    """The ``input_bound`` verdict on measured seconds per batch (``load``) and per step (``compute``)."""
    data = {"load_ms": load * 1e3, "compute_ms": compute * 1e3}
    if math.isnan(load) or math.isnan(compute):
        return Finding("input_bound", "skip", "fewer than two training batches to time", data=data)
    found = f"loading a batch takes {load * 1e3:.2f} ms, a training step {compute * 1e3:.2f} ms (on {device.type})"
    if load <= INPUT_BOUND_MARGIN * compute:
        return Finding("input_bound", "ok", found, data=data)
    workers = getattr(datamodule, "num_workers", None)
    fix = (
        f"--data.init_args.num_workers {max(2, 2 * workers)}"
        if isinstance(workers, int)
        else "keep the data in memory/on the device, or load it with DataLoader workers"
    )
    return Finding("input_bound", "warn", found + ": the run is input-bound", fix, data)


_TORCH_DIR = str(Path(torch.__file__).parent)
_WARNINGS_FILE = warnings.__file__


def _short_path(path: str) -> str:
    """``path`` without its site-packages or working-directory prefix."""
    if "site-packages/" in path:
        return path.rsplit("site-packages/", 1)[1]
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def sync_site(stack: list[traceback.FrameSummary]) -> str:
    """Where a host synchronisation was asked for, from the Python stack at the warning: the innermost
    frame outside torch (the code that called into torch) and, when torch's own Python code made the
    synchronising call, that frame too (``"a.py:12 in step, via torch/cuda/__init__.py:1219 in synchronize"``).
    """
    frames = [f for f in stack if f.filename != _WARNINGS_FILE]
    if not frames:
        return "unknown"
    caller = next((f for f in reversed(frames) if not f.filename.startswith(_TORCH_DIR)), None)
    inner = frames[-1]
    where = lambda f: f"{_short_path(f.filename)}:{f.lineno} in {f.name}"  # noqa: E731
    if caller is None:
        return where(inner)
    return where(caller) if caller is inner else f"{where(caller)}, via {where(inner)}"


_SYNC_WARNING = "called a synchronizing CUDA operation"
"""The text of torch's sync-debug warning (c10/cuda/CUDAFunctions.cpp). Not just "synchroniz": the first
``set_sync_debug_mode`` call warns "Synchronization debug mode is a prototype feature", which a looser
match counted as a sync in the step (seen on an H100 with torch 2.11)."""


def record_sync_sites(step: Callable[[], None]) -> list[str]:
    """Run ``step`` and return the site (:func:`sync_site`) of each host-synchronisation warning it
    raised (``torch.cuda.set_sync_debug_mode("warn")`` must be on); other warnings are dropped."""
    sites: list[str] = []

    def show(
        message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None
    ) -> None:
        if _SYNC_WARNING in str(message):
            sites.append(sync_site(traceback.extract_stack()[:-1]))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        step()
    return sites


def check_host_syncs(ctx: Context, batch: Any, device: torch.device) -> Finding:
    """CUDA host synchronisations in one training step (``torch.cuda.set_sync_debug_mode``), each
    reported with the code that asked for it."""
    if device.type != "cuda":
        return Finding("host_syncs", "skip", f"needs a CUDA device (the run uses {device.type})")
    task = copy_task(ctx.task).to(device)
    optimizer = task.optimizer_factory(task.parameter_groups())
    batch = move_data_to_device(batch, device)
    _train_step(task, optimizer, batch)  # warm-up: lazy init, first-call syncs
    torch.cuda.synchronize(device)
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        sites = record_sync_sites(lambda: _train_step(task, optimizer, batch))
    finally:
        torch.cuda.set_sync_debug_mode(previous)
    if sites:
        where = sorted(set(sites))
        return Finding(
            "host_syncs",
            "warn",
            f"{len(sites)} host synchronisation(s) per training step, at {'; '.join(where[:3])}",
            "keep values on the device in the step (no .item(), no bool(tensor), no host-indexed masks)",
            {"count": len(sites), "where": where},
        )
    return Finding("host_syncs", "ok", "no host synchronisation in a training step", data={"count": 0})


def run_batch_checks(ctx: Context, batch: Any, device: torch.device | None = None) -> list[Finding]:
    """Run :data:`BATCH_CHECKS` on one batch (a copy of the model on ``device``; nothing is saved)."""
    device = device or ctx.task.device
    task = copy_task(ctx.task).to(device)
    record = record_batch(task, move_data_to_device(batch, device))
    return [check(ctx, record) for check in BATCH_CHECKS]
