"""``lit-dl doctor``: build a recipe exactly as ``lit-dl fit`` does, check it, train nothing, write nothing."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
import warnings
from typing import Any, Literal, NoReturn

import lightning as L
import torch
from jsonargparse import ActionYesNo
from jsonargparse.typing import PositiveInt
from lightning.pytorch.cli import LightningArgumentParser

from lit_dl._lightning import trainer_callbacks, trainer_datamodule
from lit_dl.checkpointing.loading import load_checkpoint
from lit_dl.cli.lightning_cli import LitDLCLI
from lit_dl.doctor.batch import check_host_syncs, check_input_bound, run_batch_checks
from lit_dl.doctor.context import Context
from lit_dl.doctor.findings import Finding, exit_status, format_json, format_table
from lit_dl.doctor.probe import check_lr_find, check_overfit_batch
from lit_dl.doctor.static import run_static_checks
from lit_dl.errors import ConfigError
from lit_dl.models import ClassificationTask
from lit_dl.models.resume_rule import checkpoint_schedule_step

__all__ = ["DoctorCLI", "diagnose", "main", "run_doctor"]


class DoctorCLI(LitDLCLI):
    """The ``fit`` parser and objects, plus the doctor's own options; the Trainer has no logger and a
    temporary ``default_root_dir``, so nothing lands in the run folder. ``--ckpt_path`` and
    ``--model_from_ckpt`` follow ``fit``'s rules (``last`` is the newest earlier ``last.ckpt``; model
    arguments that differ from the config are an error unless opted in).

    Args:
        args: The command line after ``doctor``.
        root: A temporary folder for anything the Trainer or its callbacks might write.
    """

    def __init__(self, args: list[str], root: str) -> None:
        self._root = root
        with warnings.catch_warnings():
            # "args and sys.argv both given": `lit-dl doctor` passes argv after "doctor" on purpose
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
            self._init(args)

    run_as = "fit"

    def _init(self, args: list[str]) -> None:
        super().__init__(
            args=args,
            run=False,
            save_config_callback=None,
            parser_kwargs={"default_env": False, "prog": "lit-dl doctor"},
        )

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        super().add_arguments_to_parser(parser)
        # fit's own arguments that Lightning adds to the fit subcommand's parser only
        parser.add_argument(
            "--ckpt_path",
            type=str | None,
            default=None,
            help="Check the recipe with the weights of this checkpoint, as `lit-dl fit --ckpt_path` would "
            "resume from it ('last': the newest last.ckpt of the earlier runs under the same root).",
        )
        self.add_model_from_ckpt_argument(parser)
        parser.add_argument("--format", type=Literal["table", "json"], default="table", help="Output format.")
        parser.add_argument(
            "--lr-find",
            action=ActionYesNo,
            default=False,
            help="Also run Lightning's LR finder (Tuner.lr_find) on a copy of the model and compare.",
        )
        parser.add_argument(
            "--overfit-steps",
            type=PositiveInt,
            default=100,
            help="Steps the overfit-one-batch probe may take.",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="Accepted as in `lit-dl fit`; the doctor trains nothing.",
        )

    def before_instantiate_classes(self) -> None:
        self._restore_configured_model(self.config)
        trainer = self.config.trainer
        world = _processes(trainer.get("devices"), trainer.get("accelerator")) * int(
            trainer.get("num_nodes") or 1
        )
        self.world_size: int | None = None
        if world > 1:
            # One process stands in for the run's processes (no launch); batch and run length are
            # computed for them.
            self.world_size = world
            trainer.devices, trainer.num_nodes, trainer.strategy = 1, 1, "auto"
        trainer.logger = False
        trainer.default_root_dir = self._root
        trainer.enable_progress_bar = False
        trainer.enable_model_summary = False


def _processes(devices: Any, accelerator: Any) -> int:
    """Processes per node that ``Trainer(devices=..., accelerator=...)`` would start."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    if isinstance(devices, int) and devices > 0:
        return devices
    # "auto" or -1: every visible device of the accelerator (one process on the CPU)
    if str(accelerator) in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.device_count()
    return 1


class _Stop(Exception):
    """Ends the doctor's ``trainer.fit`` once the checks have run."""


class _Examine(L.Callback):
    """At ``on_fit_start`` (model initialised, optimizer and scheduler built, nothing trained) run
    every check, then stop the fit."""

    def __init__(
        self, overfit_steps: int, lr_find: bool, world_size: int | None = None, ckpt_path: str | None = None
    ) -> None:
        self.overfit_steps = overfit_steps
        self.lr_find = lr_find
        self.world_size = world_size
        self.ckpt_path = ckpt_path
        self.findings: list[Finding] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        assert isinstance(pl_module, ClassificationTask)
        ctx = Context.from_trainer(pl_module, trainer)
        ctx.world_size = self.world_size
        trainer.estimated_stepping_batches  # noqa: B018 - sets up the train loader
        if self.ckpt_path is not None:
            ctx.checkpoint = str(trainer.ckpt_path or self.ckpt_path)
            ctx.resume_step = _resume_step(ctx, trainer)
        findings = run_static_checks(ctx)
        if self.world_size is not None:
            findings.insert(
                0,
                Finding(
                    "processes",
                    "ok",
                    f"checked in one process for a run of {self.world_size}: the global batch and the run "
                    f"length are computed for {self.world_size} processes",
                ),
            )
        if self.ckpt_path is not None:
            findings.insert(
                0,
                Finding(
                    "checkpoint",
                    "ok",
                    f"checked with the weights of {ctx.checkpoint}, as fit resumes from it (the config's "
                    f"schedule from the restored {_step_unit(ctx)} {ctx.resume_step})",
                ),
            )
        loader = trainer.train_dataloader
        assert loader is not None  # estimated_stepping_batches built it
        device = trainer.strategy.root_device
        batch = next(iter(loader))
        batch_findings = run_batch_checks(ctx, batch, device)
        findings += batch_findings
        if any(f.check in ("anomaly", "labels") and f.status == "error" for f in batch_findings):
            skipped = ["input_bound", "host_syncs", "overfit_batch"] + (["lr_find"] if self.lr_find else [])
            findings += [
                Finding(name, "skip", "a training step fails (see anomaly, labels)") for name in skipped
            ]
        else:
            findings.append(check_input_bound(ctx, loader, device))
            findings.append(check_host_syncs(ctx, batch, device))
            findings.append(check_overfit_batch(ctx, batch, self.overfit_steps, device))
            if self.lr_find:
                datamodule = trainer_datamodule(trainer)
                assert datamodule is not None  # diagnose() fits with one
                findings.append(check_lr_find(ctx, datamodule))
        self.findings = findings
        raise _Stop


def _resume_step(ctx: Context, trainer: L.Trainer) -> int:
    """The scheduler step ``fit --ckpt_path`` continues the config's schedule at (the resume rule)."""
    checkpoint = load_checkpoint(str(ctx.checkpoint), mmap=True)
    batches = trainer.num_training_batches
    per_epoch = math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) else None
    return checkpoint_schedule_step(checkpoint, 0, ctx.interval, ctx.frequency, per_epoch)


def _step_unit(ctx: Context) -> str:
    return "optimizer step" if ctx.interval == "step" else "epoch"


def diagnose(
    model: ClassificationTask,
    datamodule: L.LightningDataModule,
    trainer: L.Trainer,
    overfit_steps: int = 100,
    lr_find: bool = False,
    world_size: int | None = None,
    ckpt_path: str | None = None,
) -> list[Finding]:
    """Every check on a recipe: static, one batch, the overfit probe and optionally the LR finder.

    ``trainer.fit`` runs up to ``on_fit_start`` (setup hooks and callbacks such as
    :class:`~lit_dl.callbacks.WeightInit` act as in a real run, the optimizer and scheduler are
    built) and stops there; the probes work on copies of ``model``. Give a Trainer without a logger
    (or with a temporary ``default_root_dir``) to leave no files. A :class:`ConfigError` raised while
    setting up (``num_classes`` smaller than the data's, a warmup longer than the run) becomes a
    ``setup`` error finding. ``world_size``: the processes the run will use, when ``trainer`` has fewer.
    ``ckpt_path``: a checkpoint to resume from, as ``trainer.fit`` takes it; its weights are restored
    before the checks run (its optimizer state and step counter are not: Lightning restores those
    after ``on_fit_start``), a ``checkpoint`` finding names it, and the schedule is checked from the
    step fit would continue it at (:mod:`lit_dl.models.resume_rule`).
    """
    examine = _Examine(overfit_steps, lr_find, world_size, ckpt_path)
    trainer_callbacks(trainer).append(examine)
    try:
        # weights_only: checkpoints carry tensors and plain values only, as in `lit-dl fit` (lit_dl.checkpointing.loading)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except _Stop:
        pass
    except ConfigError as err:
        return [Finding("setup", "error", str(err), "see the message: the run would stop here too")]
    finally:
        trainer_callbacks(trainer).remove(examine)
    return examine.findings


def run_doctor(args: list[str]) -> int:
    """``lit-dl doctor [fit arguments] [--format table|json] [--lr-find] [--overfit-steps N]``.

    Prints the findings and returns the exit status: 0 without errors, 1 with errors. Bad arguments
    raise (the ``lit-dl`` entry point turns them into exit status 2, as for ``fit``).
    """
    loggers = [
        logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric", "lightning_utilities")
    ]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # the doctor's report is the output; progress chatter would bury it
        lg.setLevel(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory(prefix="lit-dl-doctor-") as root:
            cli = DoctorCLI(args, root)
            config: Any = cli.config
            findings = diagnose(
                cli.model,
                cli.datamodule,
                cli.trainer,
                config.overfit_steps,
                config.lr_find,
                cli.world_size,
                config.ckpt_path,
            )
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
    print(format_json(findings) if config.format == "json" else format_table(findings))
    return exit_status(findings)


def main(args: list[str]) -> NoReturn:
    """``lit-dl doctor ...``: :func:`run_doctor`, its status as the process's exit status."""
    sys.exit(run_doctor(args))
