"""GPU check of configs/trainer/ddp.yaml: a BatchNorm recipe trains under DDP with SyncBatchNorm in bf16.

Fits ``--recipe`` (default: the BatchNorm ConvNet, configs/digits_cnn.yaml) composed with
configs/trainer/ddp.yaml on ``--devices`` GPUs in ``bf16-mixed`` for ``--steps`` optimizer steps
and prints what it saw: the norm layer classes in the module being trained (counted at
``on_train_start``, after Lightning's conversion), the precision, the dtype of the logits in a
training step, and the first and last training losses. Exits 1 if a plain BatchNorm layer is left,
no SyncBatchNorm is found, the logits are not bfloat16 or a loss is not finite.

On one GPU the layers are SyncBatchNorm but have no peer to sync with (torch then normalises with the
local batch); ``--devices 2`` or more exercises the all-reduce of the statistics. The CPU cannot run
this (torch's DDP refuses SyncBatchNorm on CPU modules; tests/test_trainer_ddp_config.py checks the
conversion there).

    python scripts/check_sync_batchnorm_gpu.py                      # 1 GPU, 30 steps (crosses one digits epoch: validation runs)
    python scripts/check_sync_batchnorm_gpu.py --devices 2 --steps 50
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from lit_dl.cli import LitDLCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class SyncBatchNormReport(L.Callback):
    """Records the norm layers being trained, the logits dtype and the training losses."""

    def __init__(self) -> None:
        self.norms: dict[str, int] = {}
        self.logits_dtype: torch.dtype | None = None
        self.losses: list[float] = []
        self._hook: Any = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                self.norms[type(module).__name__] = self.norms.get(type(module).__name__, 0) + 1

        def record(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            if module.training and self.logits_dtype is None:
                self.logits_dtype = output.dtype

        self._hook = pl_module.register_forward_hook(record)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, *args: Any
    ) -> None:
        self.losses.append(float(outputs["loss"]))  # a host sync per step: fine for a check

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._hook.remove()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", default=str(CONFIGS / "digits_cnn.yaml"))
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--precision", default="bf16-mixed")
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # LightningCLI gets its arguments from `args=` below, not from the command line
    with tempfile.TemporaryDirectory() as root:
        cli = LitDLCLI(
            args=[
                "--config",
                args.recipe,
                "--config",
                str(CONFIGS / "trainer" / "ddp.yaml"),
                "--trainer.accelerator=gpu",
                f"--trainer.devices={args.devices}",
                f"--trainer.precision={args.precision}",
                f"--trainer.max_steps={args.steps}",
                "--trainer.limit_val_batches=2",
                "--trainer.enable_progress_bar=false",
                f"--trainer.default_root_dir={root}",
            ],
            run=False,
        )
        report = SyncBatchNormReport()
        cli.trainer.callbacks.append(report)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    if not cli.trainer.is_global_zero:
        return
    plain = {k: v for k, v in report.norms.items() if k != "SyncBatchNorm"}
    finite = bool(report.losses) and all(math.isfinite(x) for x in report.losses)
    print(
        f"devices={cli.trainer.world_size} strategy={type(cli.trainer.strategy).__name__} "
        f"precision={cli.trainer.precision} steps={cli.trainer.global_step}\n"
        f"norm layers while training: {report.norms}\n"
        f"logits dtype in a training step: {report.logits_dtype}\n"
        f"train loss first/last: {report.losses[0] if report.losses else None} / "
        f"{report.losses[-1] if report.losses else None}"
    )
    ok = report.norms.get("SyncBatchNorm", 0) > 0 and not plain and finite
    ok = ok and (args.precision != "bf16-mixed" or report.logits_dtype == torch.bfloat16)
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
