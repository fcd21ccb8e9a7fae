"""Bad input to `lit-dl`: one line `lit-dl: error: ...` naming the value, exit 2, no run folder.

Whether lit_dl, jsonargparse, Lightning or torch finds the problem: values that would train to nonsense,
bad files (checkpoints, configs, run folders) and an environment that cannot run the command.
"""

from __future__ import annotations

import copy
import csv
import os
import re
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lit_dl.cli import LitDLCLI, main
from lit_dl.cli.checks import usable_cpu_cores
from tests.conftest import quiet_trainer, tiny_recipe

SGD = ["--model.init_args.optimizer.class_path=torch.optim.SGD"]
STEP_LR = ["--model.init_args.lr_scheduler.class_path=torch.optim.lr_scheduler.StepLR"]
COSINE = ["--model.init_args.lr_scheduler.class_path=torch.optim.lr_scheduler.CosineAnnealingLR"]
DIGITS = [
    "--data=lit_dl.data.DigitsDataModule",
    "--model.init_args.in_features=64",
    "--model.init_args.num_classes=10",
]
POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="symbolic links, named pipes and devices")


def case(extra: list[str], message: str, id: str, subcommand: str = "fit", **kwargs):
    return pytest.param(subcommand, extra, message, id=id, **kwargs)


VALUES = [
    case(["--model.init_args.optimizer.init_args.lr=0"], "lr=0.0, must be a finite number > 0", "lr-zero"),
    case(
        ["--model.init_args.optimizer.init_args.lr=.nan"],
        "lr=nan, must be a finite number > 0",
        "lr-yaml-nan",
    ),
    # 'nan' is text to YAML: the message says so instead of "got 'nan'; expected float"
    case(
        ["--model.init_args.optimizer.init_args.lr=nan"],
        "optimizer.init_args.lr: got 'nan', which YAML reads as text, not a number; expected float or null "
        "(YAML writes NaN as .nan and infinity as .inf)",
        "lr-text-nan",
    ),
    case(
        ["--model.init_args.dropout=-inf"],
        "model.dropout: got '-inf', which YAML reads as text, not a number",
        "dropout-text-inf",
    ),
    case(
        ["--model.init_args.optimizer.init_args.lr=-0.5"],
        "invalid optimizer settings for AdamW: lr=-0.5, must be a finite number > 0",
        "lr-negative",
    ),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.momentum=1.5"],
        "momentum=1.5, must be in [0, 1)",
        "momentum-above-1",
    ),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.momentum=-0.1"],
        "invalid optimizer settings for SGD: momentum=-0.1, must be in [0, 1)",
        "momentum-negative",
    ),
    case(
        [*SGD, "--model.init_args.optimizer.init_args.nesterov=true"],
        "invalid optimizer settings for SGD: nesterov=True needs momentum > 0 and dampening=0, got "
        "momentum=0.0, dampening=0.0; set momentum > 0 (0.9 is usual) and dampening=0, or nesterov=false",
        "nesterov-without-momentum",
    ),
    case(
        [
            *SGD,
            "--model.init_args.optimizer.init_args.nesterov=true",
            "--model.init_args.optimizer.init_args.momentum=0.9",
            "--model.init_args.optimizer.init_args.dampening=0.1",
        ],
        "nesterov=True needs momentum > 0 and dampening=0, got momentum=0.9, dampening=0.1",
        "nesterov-with-dampening",
    ),
    case(
        [
            "--model.init_args.optimizer.class_path=torch.optim.Adadelta",
            "--model.init_args.optimizer.init_args.rho=1.5",
        ],
        "invalid optimizer settings for Adadelta: rho=1.5, must be in [0, 1]",
        "adadelta-rho-above-1",
    ),
    case(
        [
            "--model.init_args.optimizer.class_path=torch.optim.Adagrad",
            "--model.init_args.optimizer.init_args.lr_decay=-1",
        ],
        "invalid optimizer settings for Adagrad: lr_decay=-1.0, must be a finite number >= 0",
        "adagrad-lr-decay-negative",
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
        "invalid optimizer settings for AdamW: weight_decay=-1.0, must be a finite number >= 0",
        "weight-decay",
    ),
    case(
        ["--model.init_args.optimizer.init_args.betas=[1.5,0.9]"],
        "invalid optimizer settings for AdamW: betas=(1.5, 0.9), must be two numbers, each in [0, 1)",
        "betas",
    ),
    case(["--model.init_args.optimizer.init_args.eps=0"], "eps=0.0, must be a finite number > 0", "eps-zero"),
    case(
        ["--model.init_args.optimizer.init_args.eps=-1e-8"],
        "invalid optimizer settings for AdamW: eps=-1e-08, must be a finite number > 0",
        "eps-negative",
    ),
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
        [
            "--model.init_args.activation=leaky_relu",
            "--model.init_args.activation_kwargs.negative_slope=steep",
        ],
        "activation 'leaky_relu' with negative_slope='steep' does not run: leaky_relu(): argument "
        "'negative_slope' (position 2) must be Number, not str",
        "activation-option-type",
    ),
    case(
        ["--model.init_args.activation=gelu", "--model.init_args.activation_kwargs.approximate=fast"],
        "activation 'gelu' with approximate='fast' does not run: approximate argument must be either none or tanh",
        "activation-option-value",
    ),
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
    case(
        ["--trainer.gradient_clip_val=-1"],
        "trainer.gradient_clip_val=-1 is not allowed here; give >= 0",
        "clip-negative",
    ),
    case(["--trainer.num_nodes=0"], "trainer.num_nodes=0", "num-nodes-zero"),
    case(
        ["--trainer.num_sanity_val_steps=-5"],
        "trainer.num_sanity_val_steps=-5 is not allowed here; give >= 0 batches, or -1 for the whole "
        "validation split",
        "sanity-steps-below-minus-1",
    ),
    case(["--trainer.min_epochs=-1"], "trainer.min_epochs=-1 is not allowed here; give >= 0", "min-epochs"),
    case(["--trainer.min_steps=-3"], "trainer.min_steps=-3 is not allowed here; give >= 0", "min-steps"),
    # found by Lightning once the data are set up, before the first step
    case(
        ["--trainer.val_check_interval=1000"],
        "trainer.val_check_interval=1000 is more than the 6 training batches of an epoch; give at most 6, a "
        "fraction of an epoch (0.5: twice an epoch), or check_val_every_n_epoch=null",
        "val-check-interval-above-epoch",
    ),
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
    # each CPU process holds a copy of the model: a thousand of them stall the machine
    case(
        ["--trainer.devices=1000"],
        f"trainer.devices='1000' starts 1000 CPU processes and this machine gives this process "
        f"{usable_cpu_cores()} CPU core(s); give at most {usable_cpu_cores()}",
        "cpu-devices-above-cores",
        marks=pytest.mark.skipif(torch.cuda.is_available(), reason="devices are GPUs here"),
    ),
    case(
        ["env:PL_GLOBAL_SEED=abc", "--seed_everything=true"],
        "the environment variable PL_GLOBAL_SEED='abc' is not a seed; give an int in [0, 4294967295]",
        "env-seed-text",
    ),
    # the data order reads it even when nothing is seeded
    case(
        ["env:PL_GLOBAL_SEED=-4", "--seed_everything=false"],
        "the environment variable PL_GLOBAL_SEED='-4' is not a seed",
        "env-seed-negative",
    ),
    case(
        ["--trainer.default_root_dir={small_disk}/runs"],
        "the disk of the run folder '{small_disk}/runs/lightning_logs/version_0' is full (No space left on "
        "device): free space there or give --trainer.default_root_dir on another disk",
        "run-disk-full",
        marks=pytest.mark.skipif(
            os.name != "posix" or os.geteuid() != 0, reason="mounts an 8 kB tmpfs (needs root)"
        ),
    ),
    case(
        ["--trainer.default_root_dir={files}/runs/" + "x" * 300],
        "has a folder name of 300 bytes",
        "root-name-too-long",
    ),
    case(
        ["--trainer.default_root_dir={files}/runs/" + "/".join(["y" * 200] * 21)],
        "bytes long; paths hold at most",
        "root-path-too-long",
    ),
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
        ["--ckpt_path={loop}"],
        "checkpoint '{loop}' is a symbolic link that loops (ELOOP); give the file itself",
        "ckpt-symlink-loop",
        subcommand="test",
        marks=POSIX_ONLY,
    ),
    case(
        ["--ckpt_path={dangling}"],
        "checkpoint '{dangling}' is a symbolic link to 'nowhere.ckpt', which does not exist",
        "ckpt-dangling-symlink",
        subcommand="test",
        marks=POSIX_ONLY,
    ),
    case(
        ["--ckpt_path={fifo}"],
        "checkpoint '{fifo}' is a named pipe (FIFO), not a regular file; give the file itself",
        "ckpt-fifo",
        subcommand="test",
        marks=POSIX_ONLY,
    ),
    case(
        ["--ckpt_path=/dev/null"],
        "checkpoint '/dev/null' is a character device, not a regular file",
        "ckpt-device",
        marks=POSIX_ONLY,
    ),
    case(
        ["--model.init_args.init_from={fifo}"],
        "checkpoint file '{fifo}' is a named pipe (FIFO), not a regular file",
        "init-from-fifo",
        marks=POSIX_ONLY,
    ),
    # reading a pipe waits for a writer forever
    case(
        ["--config={fifo}"],
        "config '{fifo}' is a named pipe (FIFO), not a regular file",
        "config-fifo",
        marks=POSIX_ONLY,
    ),
    case(
        ["--config={loop}"],
        "config '{loop}' is a symbolic link that loops (ELOOP)",
        "config-symlink-loop",
        marks=POSIX_ONLY,
    ),
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


# Checkpoints whose content does not fit the config (the tiny recipe): each is the tiny recipe's own
# checkpoint with one entry changed, or one that plain Lightning wrote for another LightningModule.
CHECKPOINTS = [
    case(
        ["--ckpt_path={extra_key}"],
        "checkpoint '{extra_key}' does not fit the config's MLPClassifier: it has backbone.extra.weight, which "
        "the model does not. Give the config it was trained with (its run's config.yaml)",
        "ckpt-extra-key",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={missing_key}"],
        "checkpoint '{missing_key}' does not fit the config's MLPClassifier: it has no backbone.head.bias, "
        "which the model needs",
        "ckpt-missing-key",
        subcommand="validate",
    ),
    case(
        ["--ckpt_path={wrong_shape}"],
        "checkpoint '{wrong_shape}' does not fit the config's MLPClassifier: backbone.head.weight has shape "
        "[3, 3] in the checkpoint, [3, 16] in the model",
        "ckpt-wrong-shape",
    ),
    case(
        ["--ckpt_path={other_model}"],
        "checkpoint '{other_model}' does not fit the config's MLPClassifier: it has no "
        "backbone.features.1.0.weight, backbone.features.1.1.weight, backbone.features.1.1.bias, "
        "backbone.features.1.1.running_mean and 4 more, which the model needs (8 of its 8 entries); it has "
        "layer.weight, layer.bias, which the model does not",
        "ckpt-plain-lightning-other-model",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={other_model_hparams}", "--model_from_ckpt=true"],
        "checkpoint '{other_model_hparams}' was trained with a different model: model.init_args.width=5 in "
        "the checkpoint, not an argument in the config. The configured model has no such argument(s), so "
        "the checkpoint is not one of its",
        "ckpt-plain-lightning-other-hparams",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={hparams_list}"],
        "checkpoint '{hparams_list}' has hyper_parameters=[1, 2] (list); Lightning writes a dictionary of "
        "the model's arguments there",
        "ckpt-hparams-list",
    ),
    case(
        ["--ckpt_path={hparams_text}"],
        "checkpoint '{hparams_text}' has hyper_parameters='mlp' (str)",
        "ckpt-hparams-text",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={state_dict_list}"],
        "checkpoint '{state_dict_list}' has state_dict=[1.0] (list); Lightning writes a dictionary of tensors",
        "ckpt-state-dict-list",
        subcommand="predict",
    ),
    case(
        ["--ckpt_path={state_entry_text}"],
        "checkpoint '{state_entry_text}' has state_dict entry 'backbone.head.bias' = 'zeros' (str); a "
        "state_dict holds tensors",
        "ckpt-state-entry-text",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={version_text}"],
        "checkpoint '{version_text}' has pytorch-lightning_version='banana' (str); Lightning writes a version "
        "string such as",
        "ckpt-version-text",
        subcommand="test",
    ),
    case(
        ["--ckpt_path={loops_text}"],
        "checkpoint '{loops_text}' has loops='epoch 1' (str); Lightning writes a dictionary of loop states",
        "ckpt-loops-text",
    ),
    case(
        ["--ckpt_path={callbacks_text}"],
        "checkpoint '{callbacks_text}' has callbacks='none' (str); Lightning writes a dictionary of callback",
        "ckpt-callbacks-text",
    ),
    case(
        ["--ckpt_path={optimizer_states_text}"],
        "checkpoint '{optimizer_states_text}' has optimizer_states='adamw' (str); Lightning writes a list of "
        "optimizer state dictionaries",
        "ckpt-optimizer-states-text",
    ),
    # ModelCheckpoint(save_weights_only=True) writes these: they test, but do not resume
    case(
        ["--ckpt_path={weights_only}"],
        "checkpoint '{weights_only}' has no optimizer_states (written with save_weights_only=True?), so fit "
        "cannot resume from it; start a new run from its weights with "
        "--model.init_args.init_from={weights_only}",
        "ckpt-weights-only-resume",
    ),
    case(
        ["--ckpt_path={no_schedulers}"],
        "checkpoint '{no_schedulers}' has no lr_schedulers",
        "ckpt-no-schedulers",
    ),
    case(
        ["--ckpt_path={one_group}"],
        "checkpoint '{one_group}' holds optimizer state for 1 parameter group(s) of [2] parameters, the "
        "config's AdamW has 2 of [2, 3]: the model's parameter groups differ; resume with the config it was "
        "trained with (its run's config.yaml), or start a new run from its weights with "
        "--model.init_args.init_from={one_group}",
        "ckpt-optimizer-groups",
    ),
]

# Data modules given values or files they cannot read (the tiny recipe's data swapped by a second config).
DATA = [
    case(
        ["--config={text_recipe}", "--data.init_args.encoding=klingon"],
        "encoding='klingon' is not a text encoding Python knows; give one such as 'utf-8', 'utf-8-sig'",
        "text-encoding",
    ),
    case(
        ["--config={text_recipe}", "--data.init_args.train_path={long_field_csv}"],
        "{long_field_csv}, line 5: a field is longer than 131072 characters (the csv module's limit); shorten "
        "the text",
        "text-field-too-long",
    ),
    case(
        [*DIGITS, "--data.init_args.val_fraction=0.0002"],
        "val_fraction=0.0002 puts 1 of 1797 samples in the validation split; a stratified split needs at "
        "least one per class (10): give val_fraction >= 0.00556",
        "digits-val-fraction-tiny",
    ),
    case(
        [*DIGITS, "--data.init_args.test_fraction=0.001"],
        "test_fraction=0.001 puts 2 of 1797 samples in the test split",
        "digits-test-fraction-tiny",
    ),
]


@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory) -> dict[str, str]:
    """The tiny recipe's checkpoint (``trained``) and variants that do not fit it, and data files, once
    per module."""
    folder = tmp_path_factory.mktemp("bad_checkpoints")
    recipe = folder / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe()))
    cli = LitDLCLI(
        args=[
            "fit",
            "--config",
            str(recipe),
            f"--trainer.default_root_dir={folder / 'runs'}",
            "--trainer.max_epochs=1",
            "--test_after_fit=false",
        ]
    )
    trained = Path(cli.trainer.checkpoint_callback.best_model_path)
    good = torch.load(trained, weights_only=True)
    paths = {"trained": trained}

    def variant(name: str, change) -> None:
        checkpoint = copy.deepcopy(good)
        change(checkpoint)
        paths[name] = folder / f"{name}.ckpt"
        torch.save(checkpoint, paths[name])

    state = "state_dict"
    variant("extra_key", lambda c: c[state].__setitem__("backbone.extra.weight", torch.ones(2)))
    variant("missing_key", lambda c: c[state].pop("backbone.head.bias"))
    variant("wrong_shape", lambda c: c[state].__setitem__("backbone.head.weight", torch.ones(3, 3)))
    variant("hparams_list", lambda c: c.__setitem__("hyper_parameters", [1, 2]))
    variant("hparams_text", lambda c: c.__setitem__("hyper_parameters", "mlp"))
    variant("state_dict_list", lambda c: c.__setitem__(state, [1.0]))
    variant("state_entry_text", lambda c: c[state].__setitem__("backbone.head.bias", "zeros"))
    variant("version_text", lambda c: c.__setitem__("pytorch-lightning_version", "banana"))
    variant("loops_text", lambda c: c.__setitem__("loops", "epoch 1"))
    variant("callbacks_text", lambda c: c.__setitem__("callbacks", "none"))
    variant("optimizer_states_text", lambda c: c.__setitem__("optimizer_states", "adamw"))
    variant("weights_only", lambda c: [c.pop("optimizer_states"), c.pop("lr_schedulers")])
    variant("no_schedulers", lambda c: c.pop("lr_schedulers"))
    variant("one_group", lambda c: c["optimizer_states"][0]["param_groups"].pop())
    paths["other_model_hparams"] = _plain_lightning_checkpoint(folder / "other_model_hparams.ckpt")
    other = torch.load(paths["other_model_hparams"], weights_only=True)
    other.pop("hyper_parameters")
    paths["other_model"] = folder / "other_model.ckpt"
    torch.save(other, paths["other_model"])
    paths.update(_text_recipe(folder))
    return {name: str(path) for name, path in paths.items()}


class _OtherModel(L.LightningModule):
    """A LightningModule that is not a lit_dl recipe, as a user of plain Lightning writes one."""

    def __init__(self, width: int = 5) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = nn.Linear(16, width)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _plain_lightning_checkpoint(path: Path) -> Path:
    """Plain Lightning's checkpoint of :class:`_OtherModel` after one step."""
    data = DataLoader(TensorDataset(torch.randn(8, 16)), batch_size=4)
    trainer = quiet_trainer(path.parent, max_steps=1)
    trainer.fit(_OtherModel(), data)
    trainer.save_checkpoint(path)
    return path


def _text_recipe(folder: Path) -> dict[str, Path]:
    """A config that swaps the tiny recipe's model and data for text ones, its CSV files, and a training
    file with a field longer than the csv module reads."""
    rows = [("text", "label")] + [(f"word{i} foo bar", "ab"[i % 2]) for i in range(6)]
    for split in ("train", "val", "test"):
        with open(folder / f"{split}.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows)
    with open(folder / "long_field.csv", "w", newline="") as f:
        csv.writer(f).writerows([*rows[:4], ("x" * 300_000, "a")])
    recipe = {
        "model": {
            "class_path": "lit_dl.models.SequenceClassifier",
            "init_args": {"num_classes": 2, "vocab_size": 64},
        },
        "data": {
            "class_path": "lit_dl.data.TextDataModule",
            "init_args": {
                f"{split}_path": str(folder / f"{split}.csv") for split in ("train", "val", "test")
            },
        },
    }
    (folder / "text.yaml").write_text(yaml.safe_dump(recipe))
    return {"text_recipe": folder / "text.yaml", "long_field_csv": folder / "long_field.csv"}


@pytest.fixture
def small_disk(tmp_path: Path):
    """An 8 kB tmpfs under tmp_path: the run folder's disk fills while Lightning writes hparams.yaml."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield str(mount)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


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
    if os.name == "posix":
        (files / "loop1").symlink_to(files / "loop2")
        (files / "loop2").symlink_to(files / "loop1")
        (files / "dangling").symlink_to("nowhere.ckpt")
        os.mkfifo(files / "fifo")
    names = {
        "files": files,
        "loop": files / "loop1",
        "dangling": files / "dangling",
        "fifo": files / "fifo",
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


_CASES = VALUES + TRAINER + ENVIRONMENT + FILES + CHECKPOINTS + DATA


@pytest.mark.parametrize(("subcommand", "extra", "message"), _CASES)
def test_bad_input_prints_one_line_naming_the_value_exits_2_and_leaves_no_run_folder(
    tiny_config,
    tmp_path,
    bad_files,
    bad_checkpoints,
    request,
    capsys,
    monkeypatch,
    subcommand,
    extra,
    message,
):
    """``env:NAME=value`` items of ``extra`` set an environment variable; the others are arguments."""
    monkeypatch.chdir(tmp_path)  # a run that falls back to the current directory shows up below
    names = {**bad_files, **bad_checkpoints}
    if any("{small_disk}" in arg for arg in extra):
        names["small_disk"] = request.getfixturevalue("small_disk")
    root = tmp_path / "runs"
    args = [subcommand, "--config", str(tiny_config), f"--trainer.default_root_dir={root}"]
    for arg in extra:
        if arg.startswith("env:"):
            monkeypatch.setenv(*arg.removeprefix("env:").split("=", 1))
        else:
            args.append(arg.format(**names))
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("lit-dl: error: ")
    assert message.format(**names) in lines[0]
    assert not list(tmp_path.rglob("lightning_logs"))
    assert not root.exists()
    assert not (tmp_path / "files" / "runs").exists()
    if "small_disk" in names:
        assert not list(Path(names["small_disk"]).iterdir())


def test_the_table_covers_at_least_a_hundred_and_twenty_cases():
    assert len(_CASES) >= 120


def test_an_anomaly_that_detect_anomaly_finds_names_the_step_and_exits_1(tiny_config, tmp_path, capsys):
    """A diverged run, as NonFiniteGuard reports one: exit 1, one line naming the step; the run folder,
    which holds what was trained, stays."""
    args = ["fit", "--config", str(tiny_config), f"--trainer.default_root_dir={tmp_path / 'runs'}"]
    args += ["--trainer.detect_anomaly=true", "--model.init_args.optimizer.init_args.lr=1e6"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert re.fullmatch(
        r"lit-dl: error: trainer\.detect_anomaly: the backward pass of step \d+ \(epoch \d+\) gave (nan|inf) in "
        r"output \d+ of \w+: the loss or the weights diverged; lower the learning rate, clip gradients "
        r"\(trainer\.gradient_clip_val\) or resume from an earlier checkpoint",
        line,
    ), line
    assert (tmp_path / "runs" / "lightning_logs" / "version_0" / "config.yaml").is_file()


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
