"""Bad input to `lit-dl`: one line `lit-dl: error: ...` naming the value, exit 2, no run folder.

Whether lit_dl, jsonargparse, Lightning or torch finds the problem: values that would train to nonsense,
bad files (checkpoints, configs, run folders) and an environment that cannot run the command.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lit_dl.cli import main

SGD = ["--model.init_args.optimizer.class_path=torch.optim.SGD"]
STEP_LR = ["--model.init_args.lr_scheduler.class_path=torch.optim.lr_scheduler.StepLR"]
COSINE = ["--model.init_args.lr_scheduler.class_path=torch.optim.lr_scheduler.CosineAnnealingLR"]


def case(extra: list[str], message: str, id: str, subcommand: str = "fit", **kwargs):
    return pytest.param(subcommand, extra, message, id=id, **kwargs)


VALUES = [
    case(["--model.init_args.optimizer.init_args.lr=0"], "lr=0.0, must be a finite number > 0", "lr-zero"),
    case(["--model.init_args.optimizer.init_args.lr=.nan"], "Invalid learning rate: nan", "lr-yaml-nan"),
    case(
        ["--model.init_args.optimizer.init_args.lr=nan"], "optimizer.init_args.lr: got 'nan'", "lr-text-nan"
    ),
    case(["--model.init_args.optimizer.init_args.lr=-0.5"], "Invalid learning rate: -0.5", "lr-negative"),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.momentum=1.5"],
        "momentum=1.5, must be in [0, 1)",
        "momentum-above-1",
    ),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.momentum=-0.1"],
        "Invalid momentum value: -0.1",
        "momentum-negative",
    ),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.dampening=2"],
        "invalid optimizer settings for SGD: dampening=2.0, must be in [0, 1]",
        "dampening-above-1",
    ),
    case(
        [
            "--model.init_args.optimizer.class_path=torch.optim.RMSprop",
            "--model.init_args.optimizer.init_args.alpha=1.5",
        ],
        "invalid optimizer settings for RMSprop: alpha=1.5, must be in [0, 1]",
        "rmsprop-alpha-above-1",
    ),
    case(
        [
            "--model.init_args.optimizer.class_path=torch.optim.ASGD",
            "--model.init_args.optimizer.init_args.lambd=-1",
        ],
        "invalid optimizer settings for ASGD: lambd=-1.0, must be a finite number >= 0",
        "asgd-lambd-negative",
    ),
    case(
        ["--model.init_args.optimizer.init_args.weight_decay=-1"],
        "Invalid weight_decay value: -1.0",
        "weight-decay",
    ),
    case(
        ["--model.init_args.optimizer.init_args.betas=[1.5,0.9]"],
        "Invalid beta parameter at index 0: 1.5",
        "betas",
    ),
    case(["--model.init_args.optimizer.init_args.eps=0"], "eps=0.0, must be a finite number > 0", "eps-zero"),
    case(
        ["--model.init_args.optimizer.class_path=torch.optim.Adamm"],
        "has no attribute 'Adamm'",
        "optimizer-class",
    ),
    case(
        ["--model.init_args.optimizer.init_args.momentum=0.9"],
        "momentum: got '0.9'; Option 'momentum' is not accepted",
        "optimizer-option",
    ),
    case(
        [*COSINE, "--model.init_args.lr_scheduler.init_args.T_max=0"],
        "CosineAnnealingLR: T_max=0, must be >= 1",
        "t-max-zero",
    ),
    case(
        [*STEP_LR, "--model.init_args.lr_scheduler.init_args.step_size=0"],
        "StepLR: step_size=0",
        "step-size-zero",
    ),
    case(
        [
            *STEP_LR,
            "--model.init_args.lr_scheduler.init_args.step_size=5",
            "--model.init_args.lr_scheduler.init_args.gamma=0",
        ],
        "gamma=0.0",
        "gamma-zero",
    ),
    case(
        ["--model.init_args.lr_scheduler.class_path=torch.optim.lr_scheduler.Cosine"],
        "has no attribute 'Cosine'",
        "scheduler-class",
    ),
    case(["--model.init_args.dropout=1.0"], "dropout must be in [0, 1), got 1.0", "dropout-1"),
    case(["--model.init_args.dropout=-0.1"], "got -0.1", "dropout-negative"),
    case(["--model.init_args.activation=swish2"], "unknown activation 'swish2'", "activation"),
    case(
        ["--model.init_args.norm=sideways"],
        "norm: got 'sideways'; expected one of 'before', 'after', 'none'",
        "norm",
    ),
    case(["--model.init_args.hidden_sizes=[0]"], "got [0]", "hidden-size-zero"),
    case(["--model.init_args.num_classes=1"], "num_classes must be >= 2, got 1", "num-classes-1"),
    case(
        ["--model.init_args.num_classes=2"],
        "model num_classes=2 is smaller than the 3 classes",
        "num-classes-vs-data",
    ),
    case(["--model.init_args.num_classes=ten"], "num_classes: got 'ten'; expected int", "num-classes-text"),
    case(
        ["--model.init_args.in_features=10"],
        "model in_features=10 does not match the 16 features",
        "in-features",
    ),
    # without a logger the run folder is default_root_dir itself: its config.yaml goes too
    case(
        ["--trainer.logger=false", "--model.init_args.in_features=10"],
        "model in_features=10 does not match the 16 features",
        "in-features-without-logger",
    ),
    case(
        ["--model.init_args.label_smoothing=1.0"],
        "label_smoothing must be in [0, 1), got 1.0",
        "label-smoothing",
    ),
    case(["--model.init_args.l1=-1"], "l1 must be >= 0, got -1", "l1-negative"),
    case(["--model.init_args.lr_scaling=cubic"], "got 'cubic'", "lr-scaling"),
    case(["--model.init_args.scheduler_interval=batch"], "got 'batch'", "scheduler-interval"),
    case(
        ["--model.class_path=lit_dl.models.Nope"], "model.class_path: got 'lit_dl.models.Nope'", "model-class"
    ),
    case(
        ["--model.init_args.depth=3"], "model.depth: got '3'; Option 'depth' is not accepted", "model-option"
    ),
    case(["--data.init_args.batch_size=0"], "batch_size must be >= 1, got 0", "batch-size-zero"),
    case(["--data.init_args.num_train=lots"], "num_train: got 'lots'", "data-text"),
    case(["--data.class_path=lit_dl.data.Nope"], "data.class_path: got 'lit_dl.data.Nope'", "data-class"),
    case(["--seed_everything=abc"], "seed_everything: got 'abc'", "seed"),
    case(
        ["--seed_everything=-5"],
        "seed_everything=-5 is not allowed; give an int in [0, 4294967295]",
        "seed-negative",
    ),
    case(["--seed_everything=4294967296"], "seed_everything=4294967296 is not allowed", "seed-above-2-32"),
    case(["--nonsense=3"], "unrecognized arguments: --nonsense=3", "unknown-option"),
    # Lightning's top-level optimizer would bypass the model's parameter groups: not an option here
    case(
        ["--optimizer=torch.optim.SGD"],
        "unrecognized arguments: --optimizer=torch.optim.SGD",
        "top-level-optimizer",
    ),
]

TRAINER = [
    case(["--trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed", "max-epochs-zero"),
    case(["--trainer.max_epochs=-2"], "trainer.max_epochs=-2", "max-epochs-negative"),
    case(["--trainer.max_epochs=many"], "trainer.max_epochs: got 'many'; expected int", "max-epochs-text"),
    case(["--trainer.max_steps=0"], "trainer.max_steps=0 is not allowed", "max-steps-zero"),
    case(["--trainer.limit_train_batches=0"], "trainer.limit_train_batches=0", "limit-train-zero"),
    case(["--trainer.accumulate_grad_batches=0"], "trainer.accumulate_grad_batches=0", "accumulate-zero"),
    case(["--trainer.val_check_interval=0"], "trainer.val_check_interval=0", "val-check-zero"),
    case(["--trainer.check_val_every_n_epoch=0"], "trainer.check_val_every_n_epoch=0", "check-val-zero"),
    case(["--trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0", "log-every-zero"),
    case(["--trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1 is not allowed here; give >= 0", "clip-negative"),
    case(["--trainer.num_nodes=0"], "trainer.num_nodes=0", "num-nodes-zero"),
]

ENVIRONMENT = [
    case(
        ["--trainer.accelerator=gpu"],
        "trainer.accelerator='gpu' needs a CUDA or MPS GPU",
        "gpu-without-gpu",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
    ),
    case(
        ["--trainer.accelerator=cuda"],
        "trainer.accelerator='cuda'",
        "cuda-without-gpu",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present"),
    ),
    case(["--trainer.accelerator=tpu"], "accelerator='tpu'", "tpu-without-xla"),
    case(["--trainer.accelerator=gpuu"], "trainer.accelerator='gpuu'", "accelerator-typo"),
    case(["--trainer.devices=0"], "trainer.devices='0'", "devices-zero"),
    case(["--trainer.devices=-2"], "trainer.devices='-2'", "devices-negative"),
    case(["--trainer.precision=16-mixedd"], "trainer.precision: got '16-mixedd'; expected", "precision-typo"),
    case(["--trainer.precision=bf17"], "trainer.precision: got 'bf17'", "precision-bf17"),
    case(["--trainer.strategy=dpp"], "trainer.strategy='dpp'", "strategy-typo"),
]

FILES = [
    case(["--ckpt_path={missing}"], "checkpoint '{missing}' does not exist", "ckpt-missing"),
    case(
        ["--ckpt_path=best"],
        "ckpt_path='best' means a checkpoint of this process's own fit",
        "ckpt-best-in-test",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={folder}"], "checkpoint '{folder}' is a directory", "ckpt-folder", subcommand="predict"
    ),
    case(
        ["--ckpt_path={empty}"], "checkpoint '{empty}' is an empty file", "ckpt-empty", subcommand="validate"
    ),
    case(
        ["--ckpt_path={text}"],
        "checkpoint '{text}' is not a torch checkpoint file",
        "ckpt-text",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={yaml}"],
        "checkpoint '{yaml}' is not a torch checkpoint file",
        "ckpt-yaml-text",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={words}"],
        "checkpoint '{words}' is not a torch checkpoint file",
        "ckpt-words",
        subcommand="test",
    ),
    case(
        ["--model.init_args.init_from={yaml}"],
        "checkpoint file '{yaml}' is not a torch checkpoint file",
        "init-from-text",
    ),
    case(
        ["--ckpt_path={words}"],
        "checkpoint '{words}' is not a torch checkpoint file",
        "export-text",
        subcommand="export",
    ),
    case(
        ["--ckpt_path={whole}"],
        "checkpoint '{whole}' is not a Lightning checkpoint (a plain state dict? start from its weights with "
        "model.init_args.init_from)",
        "ckpt-plain-state-dict",
        subcommand="test",
    ),
    case(["--ckpt_path={truncated}"], "checkpoint '{truncated}' is truncated or corrupt", "ckpt-truncated"),
    case(
        ["--ckpt_path={pickle}"],
        "checkpoint '{pickle}' holds a pickled Python object (posix.system)",
        "ckpt-pickle",
        subcommand="test",
        marks=pytest.mark.skipif(os.name != "posix", reason="os.system pickles as posix.system"),
    ),
    case(
        ["--ckpt_path={tensor}"],
        "checkpoint '{tensor}' is not a Lightning checkpoint",
        "ckpt-not-a-dict",
        subcommand="test",
    ),
    case(["--config={missing}"], "File does not exist: '{missing}'", "config-missing"),
    case(["--config={syntax}"], "config '{syntax}' is not valid YAML at line 2, column 8", "config-syntax"),
    case(["--config={empty}"], "config '{empty}' is empty", "config-empty"),
    case(["--config={list}"], "config '{list}' holds a list at the top level", "config-list"),
    case(["--config={binary}"], "config '{binary}' is not a text file", "config-binary"),
    case(["--config={folder}"], "config '{folder}' is a directory", "config-folder"),
    case(
        ["--config=lit_dl://optimizer/sgdd.yaml"],
        "no shipped config 'lit_dl://optimizer/sgdd.yaml'",
        "config-shipped-typo",
    ),
    case(["--trainer.default_root_dir="], "trainer.default_root_dir='' is empty", "root-empty"),
    case(
        [
            "--trainer.callbacks+=lit_dl.callbacks.AtomicCheckpoint",
            "--trainer.callbacks.init_args.async_write=true",
            "--trainer.plugins+=lightning.pytorch.plugins.io.AsyncCheckpointIO",
        ],
        "AtomicCheckpoint(async_write=True) and the AsyncCheckpointIO plugin both write checkpoints in a thread",
        "atomic-checkpoint-with-async-io",
    ),
    case(
        [
            "--trainer.callbacks+=lit_dl.callbacks.AtomicCheckpoint",
            "--trainer.callbacks.init_args.last_min_seconds=-1",
        ],
        "last_min_seconds must be >= 0, got -1.0",
        "atomic-checkpoint-negative-interval",
    ),
    case(
        ["--trainer.default_root_dir={text}"], "trainer.default_root_dir='{text}' is a file", "root-is-file"
    ),
    case(
        ["--trainer.default_root_dir={text}/runs"],
        "trainer.default_root_dir='{text}/runs' lies under",
        "root-under-file",
    ),
    case(
        ["--trainer.default_root_dir=/proc/lit-dl-runs"],
        "trainer.default_root_dir='/proc/lit-dl-runs' cannot be created",
        "root-impossible",
        marks=pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs /proc"),
    ),
    case(
        ["--trainer.default_root_dir={readonly}/runs"],
        "trainer.default_root_dir='{readonly}/runs' cannot be created",
        "root-read-only",
        marks=pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere"),
    ),
]


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, str]:
    """One file (or folder) per way a given file can be wrong, under tmp_path/files."""
    files = tmp_path / "files"
    files.mkdir()
    (files / "folder").mkdir()
    (files / "empty").write_bytes(b"")
    (files / "text").write_text("model: mlp\n")
    (files / "yaml.ckpt").write_text("a: 1\n")  # torch's unpickler: IndexError "pop from empty list"
    (files / "words.ckpt").write_text("hello world\n")  # torch's unpickler: KeyError 101
    (files / "syntax.yaml").write_text("model: [1, 2\ntrainer: {}\n")
    (files / "list.yaml").write_text("- fit\n- test\n")
    (files / "binary.yaml").write_bytes(bytes(range(256)))
    torch.save({"state_dict": {"w": torch.ones(64)}}, files / "whole.ckpt")
    (files / "truncated.ckpt").write_bytes((files / "whole.ckpt").read_bytes()[:200])
    torch.save({"state_dict": {}, "payload": _Payload()}, files / "pickle.ckpt")
    torch.save(torch.ones(3), files / "tensor.ckpt")
    readonly = files / "readonly"
    readonly.mkdir()
    readonly.chmod(0o555)
    names = {
        "missing": files / "missing.ckpt",
        "folder": files / "folder",
        "empty": files / "empty",
        "text": files / "text",
        "syntax": files / "syntax.yaml",
        "list": files / "list.yaml",
        "binary": files / "binary.yaml",
        "yaml": files / "yaml.ckpt",
        "words": files / "words.ckpt",
        "whole": files / "whole.ckpt",
        "truncated": files / "truncated.ckpt",
        "pickle": files / "pickle.ckpt",
        "tensor": files / "tensor.ckpt",
        "readonly": readonly,
    }
    return {name: str(path) for name, path in names.items()}


class _Payload:
    """Pickles as a call to os.system: what a malicious checkpoint holds."""

    def __reduce__(self):
        return (os.system, ("echo should never run",))


@pytest.mark.parametrize(("subcommand", "extra", "message"), VALUES + TRAINER + ENVIRONMENT + FILES)
def test_bad_input_prints_one_line_naming_the_value_exits_2_and_leaves_no_run_folder(
    tiny_config, tmp_path, bad_files, capsys, monkeypatch, subcommand, extra, message
):
    monkeypatch.chdir(tmp_path)  # a run that falls back to the current directory shows up below
    root = tmp_path / "runs"
    args = [subcommand, "--config", str(tiny_config), f"--trainer.default_root_dir={root}"]
    args += [arg.format(**bad_files) for arg in extra]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("lit-dl: error: ")
    assert message.format(**bad_files) in lines[0]
    assert not list(tmp_path.rglob("lightning_logs"))
    assert not root.exists()


def test_the_table_covers_at_least_sixty_cases():
    assert len(VALUES + TRAINER + ENVIRONMENT + FILES) >= 60


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_a_failure_without_a_logger_keeps_what_was_in_default_root_dir(tiny_config, tmp_path, capsys):
    root = tmp_path / "runs"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "earlier.ckpt").write_bytes(b"kept")
    (root / "notes.txt").write_text("kept\n")
    args = ["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={root}"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--trainer.logger=false", "--model.init_args.in_features=10"])
    assert exit_info.value.code == 2
    assert "model in_features=10 does not match" in capsys.readouterr().err
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "checkpoints",
        "checkpoints/earlier.ckpt",
        "notes.txt",
    ]
