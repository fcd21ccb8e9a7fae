"""No host synchronisation in the training step of the shipped recipes.

On a GPU, ``.item()``, ``.cpu()``, ``bool(tensor)`` or printing a tensor stalls the host until the
device has caught up, once per step. Here (CPU) every such call is made to raise while the parts lit_dl
controls run: the task's ``training_step`` (forward, loss, logging) and every per-step hook of the
recipe's default callbacks, on the steps where the loggers do not write (the last step of the epoch
writes, and reads its values, once per logging window). The backward pass and the
optimizer update are torch's (C++ autograd; Adam reads its CPU step counter with ``.item()``, which
never syncs), so they stay outside the guard.
scripts/gpu_checks.sh repeats the check on CUDA with ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import contextlib
import functools

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lit_dl.cli import LitDLCLI
from lit_dl.data.device_batches import DeviceBatches
from lit_dl.models.train_window import closes_log_window
from tests.conftest import CONFIGS
from tests.data.test_vision import write_cifar

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)

# Python-level reads are patched; item/bool/int/float all end in aten._local_scalar_dense, which a
# dispatch mode sees (patching __bool__/__index__ on Tensor instead would change its C type slots).
HOST_READS = ("item", "tolist", "cpu", "numpy", "__repr__", "__format__")
SCALAR_READS = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default}


class _RefuseScalarReads(TorchDispatchMode):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SCALAR_READS:
            raise AssertionError(f"{func} in {self.where}: a host synchronisation on a GPU")
        return func(*args, **(kwargs or {}))


CALLBACK_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
)


@contextlib.contextmanager
def host_reads_raise(where: str):
    # Only names defined on torch.Tensor itself are put back; the others (inherited from the C base
    # class) are deleted again, which restores the C type slots exactly.
    saved = {name: torch.Tensor.__dict__[name] for name in HOST_READS if name in torch.Tensor.__dict__}

    def make(name):
        def refuse(self, *args, **kwargs):
            raise AssertionError(f"Tensor.{name} in {where}: a host synchronisation on a GPU")

        return refuse

    try:
        for name in HOST_READS:
            setattr(torch.Tensor, name, make(name))
        with _RefuseScalarReads(where):
            yield
    finally:
        for name in HOST_READS:
            if name in saved:
                setattr(torch.Tensor, name, saved[name])
            else:
                delattr(torch.Tensor, name)


def guarded(fn, where: str, window: dict | None = None):
    """``fn`` with host reads refused, except on a batch that closes the logging window (``window``)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if window is not None and window["closes"]:
            return fn(*args, **kwargs)  # the logger writes (and reads the values) on this step
        with host_reads_raise(where):
            return fn(*args, **kwargs)

    return wrapper


class _LogWindow(L.Callback):
    """First callback: notes whether this batch's step is one the loggers write at."""

    def __init__(self) -> None:
        self.state = {"closes": False}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.state["closes"] = closes_log_window(trainer, batch_idx)


def run_guarded(args: list[str]) -> LitDLCLI:
    cli = LitDLCLI(args=args, run=False)
    model, trainer = cli.model, cli.trainer
    window = _LogWindow()
    model.training_step = guarded(model.training_step, "training_step", window.state)
    for callback in trainer.callbacks:
        for hook in CALLBACK_HOOKS:
            name = f"{type(callback).__name__}.{hook}"
            setattr(callback, hook, guarded(getattr(callback, hook), name, window.state))
    trainer.callbacks.insert(0, window)
    trainer.fit(model, datamodule=cli.datamodule)
    return cli


STEPS = [
    "--trainer.max_epochs=1",
    "--trainer.limit_train_batches=4",
    "--trainer.limit_val_batches=0",
    "--trainer.log_every_n_steps=50",  # the loggers write at the epoch's last step only
    "--trainer.accelerator=cpu",
]
OFFLINE = {
    "digits_mlp.yaml": [],
    "digits_cnn.yaml": ["--model.init_args.channels=[4, 8]"],
    "seq_embedding.yaml": ["--data.init_args.num_train=96", "--data.init_args.batch_size=16"],
    "seq_transformer.yaml": [
        "--data.init_args.num_train=96",
        "--data.init_args.batch_size=16",
        "--model.init_args.dim=8",
    ],
}


@pytest.mark.parametrize("recipe", sorted(OFFLINE))
def test_training_step_and_default_callbacks_never_read_tensors_on_the_host(recipe, tmp_path):
    args = [
        "--config",
        str(CONFIGS / recipe),
        f"--trainer.default_root_dir={tmp_path}",
        *STEPS,
        *OFFLINE[recipe],
    ]
    cli = run_guarded(args)
    assert cli.trainer.global_step == 4


def test_fast_cifar_recipe_trains_on_device_batches_without_host_reads(tmp_path):
    # 40 fake training images - 8 for validation = 4 batches of 8; fp32 on the CPU (bf16 autocast
    # convolutions are slow there), a narrow ResNet-18 (its warmup a fraction of the run). channels_last
    # off: on the 2-core CI machine oneDNN's NHWC convolution backward intermittently stalls for
    # minutes (torch 2.13 CPU); its outputs are compared in tests/models/test_speed_switches.py.
    write_cifar(tmp_path / "data")
    args = ["--config", str(CONFIGS / "cifar10_resnet18_fast.yaml"), f"--trainer.default_root_dir={tmp_path}"]
    args += [*STEPS, f"--data.init_args.root={tmp_path / 'data'}", "--data.init_args.val_size=8"]
    args += ["--data.init_args.batch_size=8", "--model.init_args.width=4", "--trainer.precision=32-true"]
    args += ["--model.init_args.channels_last=false"]
    cli = run_guarded(args)
    assert isinstance(cli.trainer.train_dataloader, DeviceBatches)
    assert cli.trainer.global_step == 4 == len(cli.trainer.train_dataloader)
    # the LR was scaled linearly from batch 128 (0.1 * 8 / 128) and then warmed up / annealed per step
    assert cli.model.lr_schedulers().base_lrs == [pytest.approx(0.1 * 8 / 128)] * 2


def test_the_guard_catches_a_host_read(tmp_path):
    args = ["--config", str(CONFIGS / "digits_mlp.yaml"), f"--trainer.default_root_dir={tmp_path}", *STEPS]
    cli = LitDLCLI(args=args, run=False)
    step = cli.model.training_step

    def syncing_step(batch, batch_idx):
        loss = step(batch, batch_idx)
        print(f"loss {loss.item():.3f}")
        return loss

    cli.model.training_step = guarded(syncing_step, "training_step")
    with pytest.raises(AssertionError, match=r"Tensor.item in training_step: a host synchronisation"):
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
