"""Short probes that train a copy of the model: overfit one batch, and Lightning's LR finder."""

from __future__ import annotations

import math
import tempfile
import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.tuner import Tuner
from lightning.pytorch.utilities import move_data_to_device

from lit_dl.doctor.batch import split_batch
from lit_dl.doctor.context import Context, copy_task
from lit_dl.doctor.findings import Finding

__all__ = ["check_lr_find", "check_overfit_batch"]


def check_overfit_batch(
    ctx: Context, batch: Any, steps: int = 100, device: torch.device | None = None
) -> Finding:
    """Can the model fit one batch perfectly in ``steps`` optimizer steps at its configured LR?

    Karpathy (2019, "A Recipe for Training Neural Networks", "overfit one batch"): a model that cannot
    drive the training accuracy on a single batch to 100% has a bug (frozen layers, a wrong loss, an
    LR far off) before it has a capacity problem. The copy trains with the recipe's optimizer at its
    peak LR (no schedule); accuracy is measured in eval mode every 10 steps.
    """
    device = device or ctx.task.device
    task = copy_task(ctx.task).to(device)
    x, y = split_batch(move_data_to_device(batch, device))
    optimizer = task.optimizer_factory(task.parameter_groups())
    for group, lr in zip(optimizer.param_groups, ctx.peak_lrs(), strict=False):
        group["lr"] = lr

    def accuracy() -> float:
        task.eval()
        with torch.no_grad():
            acc = float((task(x).argmax(-1) == y).float().mean())
        task.train()
        return acc

    task.train()
    losses, acc, step = [], accuracy(), 0
    while step < steps and acc < 1.0:
        optimizer.zero_grad(set_to_none=True)
        loss = task.compute_loss(task(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 10 == 0 or step == steps:
            acc = accuracy()
    data = {
        "steps": step,
        "accuracy": acc,
        "loss_first": losses[0] if losses else math.nan,
        "loss_last": losses[-1] if losses else math.nan,
        "batch_size": len(y),
    }
    found = f"{len(y)} samples, {step} steps at LR {ctx.peak_lrs()[0]:g}: accuracy {acc:.0%}"
    if losses:
        found += f", loss {losses[0]:.3g} -> {losses[-1]:.3g}"
    if acc >= 1.0:
        return Finding("overfit_batch", "ok", found, data=data)
    if not losses or not math.isfinite(losses[-1]) or losses[-1] >= losses[0]:
        return Finding(
            "overfit_batch",
            "error",
            found + ": the loss does not fall on a single batch",
            "check the LR (try lit-dl doctor --lr-find), frozen parameters and the loss",
            data,
        )
    return Finding(
        "overfit_batch",
        "warn",
        found + ": it does not fit one batch",
        f"more steps (--overfit-steps {steps * 4}), a larger LR, or less regularisation (dropout, weight decay)",
        data,
    )


class _NoValidation(L.LightningDataModule):
    """The recipe's train loader only, so the LR finder runs no validation."""

    def __init__(self, datamodule: L.LightningDataModule) -> None:
        super().__init__()
        self.inner = datamodule
        self.batch_size = getattr(datamodule, "batch_size", None)

    def train_dataloader(self) -> Any:
        return self.inner.train_dataloader()


def check_lr_find(ctx: Context, datamodule: L.LightningDataModule, num_training: int = 100) -> Finding:
    """Lightning's ``Tuner.lr_find`` (Smith, 2017, "Cyclical Learning Rates", LR range test) on a copy
    of the model, in a temporary folder. Warns when the configured LR lies past the LR at which the
    range test's smoothed loss is lowest (the loss already rises there) or more than 1000x below it;
    Lightning's steepest-descent suggestion is reported alongside (it is noisy on small data)."""
    task = copy_task(ctx.task)
    trainer = ctx.trainer
    configured = ctx.peak_lrs()[0]
    with tempfile.TemporaryDirectory(prefix="lit-dl-doctor-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finder_trainer = L.Trainer(
            default_root_dir=tmp,
            accelerator=trainer.accelerator if trainer is not None else "auto",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            max_epochs=1000,
        )
        try:
            result = Tuner(finder_trainer).lr_find(
                task, datamodule=_NoValidation(datamodule), num_training=num_training, update_attr=False
            )
        except Exception as err:  # report, don't crash the other checks
            return Finding("lr_find", "skip", f"Tuner.lr_find failed: {type(err).__name__}: {err}")
    if result is None or not result.results.get("lr"):
        return Finding("lr_find", "skip", "the LR finder recorded no losses")
    lrs, losses = result.results["lr"], result.results["loss"]
    # The first points are the smoothing's warm-up (Lightning's own suggestion skips 10 too).
    finite = [i for i, loss in enumerate(losses) if i >= min(10, len(losses) // 2) and math.isfinite(loss)]
    best = min(finite, key=losses.__getitem__) if finite else 0
    lr_min_loss = float(lrs[best])
    suggestion = result.suggestion()
    data = {"suggested": suggestion, "lr_min_loss": lr_min_loss, "configured": configured}
    found = (
        f"configured LR {configured:.3g}; the range test's (smoothed) loss is lowest at LR {lr_min_loss:.3g}"
        + (f", steepest descent at {suggestion:.3g}" if suggestion is not None else "")
    )
    # Smith (2017): a good LR lies below the loss minimum of the range test, about 10x below it.
    if configured > lr_min_loss:
        return Finding(
            "lr_find",
            "warn",
            found + ": the configured LR is past the minimum, where the loss already rises",
            f"--model.init_args.optimizer.init_args.lr {lr_min_loss / 10:.3g} (a tenth of the loss minimum's LR)",
            data,
        )
    if configured < lr_min_loss / 1000:
        return Finding(
            "lr_find",
            "warn",
            found + ": the configured LR is over 1000x below it; training may crawl",
            f"--model.init_args.optimizer.init_args.lr {lr_min_loss / 10:.3g} (a tenth of the loss minimum's LR)",
            data,
        )
    return Finding("lr_find", "ok", found, data=data)
