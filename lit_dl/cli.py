"""``lit-dl``: the LightningCLI entry point (``lit-dl fit|validate|test|predict|doctor``, ``python -m lit_dl``)."""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, NoReturn

import lightning as L
import torch
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from lit_dl.errors import ConfigError
from lit_dl.models import ClassificationTask

__all__ = ["LitDLArgumentParser", "LitDLCLI", "main"]

# Lightning's CLI calls jsonargparse APIs that jsonargparse now deprecates; users can do nothing about it.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

# jsonargparse reports every Union member it tried; these lines name none of the user's values.
_NOISE = re.compile(
    r"^\s*(- Expected a <class 'NoneType'>|Given value( type)?:|Subtypes: \[|Errors:$"
    r"|Does not validate against any of the Union subtypes)"
)
_MISSING_ATTR = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
_BASES = {
    "torch.optim": "torch.optim.Optimizer",
    "torch.optim.lr_scheduler": "torch.optim.lr_scheduler.LRScheduler",
}


def _valid_names(module_name: str) -> list[str]:
    """Public classes of ``module_name`` that subclass its base (optimizers, schedulers)."""
    module = importlib.import_module(module_name)
    base_module, base_name = _BASES[module_name].rsplit(".", 1)
    base = getattr(importlib.import_module(base_module), base_name)
    return sorted(
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")
    )


def explain_parse_error(message: str) -> str:
    """Shorten a jsonargparse error and, for an unknown torch optimizer/scheduler, list the valid ones."""
    lines = [line for line in message.splitlines() if not _NOISE.match(line)]
    text = "\n".join(lines)
    match = _MISSING_ATTR.search(text)
    if match and match.group(1) in _BASES and "valid classes in" not in text:
        text += f"\nvalid classes in {match.group(1)}: {', '.join(_valid_names(match.group(1)))}"
    return text


class LitDLArgumentParser(LightningArgumentParser):
    """The CLI's parser: error messages trimmed to what names the bad value."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        super().error(explain_parse_error(message), ex)

    def print_usage(self, file: Any = None) -> None:
        # The full usage of a LightningCLI subcommand runs to hundreds of lines and buries the error.
        print(
            f"usage: {self.prog.replace(' [options]', '')} [-h] [-c CONFIG] [options]",
            file=file or sys.stdout,
        )


class LitDLCLI(LightningCLI):
    """LightningCLI with lit_dl's defaults.

    - ``model`` is any :class:`~lit_dl.models.ClassificationTask` subclass and ``data`` any
      ``LightningDataModule``, chosen by ``class_path`` (downstream classes included).
    - Every run writes into one versioned run folder, ``<default_root_dir>/lightning_logs/version_N``:
      the config copy, TensorBoard events, checkpoints, profiler traces. Re-running a command starts a
      new version; nothing is written to the current directory.
    - ``fit`` ends by testing the best checkpoint (``--test_after_fit false`` turns that off).
    - A run that fails before its first optimizer step (a bad value found at setup, say) leaves no
      run folder behind.
    """

    def __init__(self, args: ArgsType = None, run: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("parser_kwargs", {"default_env": False})
        kwargs.setdefault("parser_class", LitDLArgumentParser)
        super().__init__(
            ClassificationTask,
            L.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=args,
            run=run,
            **kwargs,
        )

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "fit":
            parser.add_argument(
                "--test_after_fit",
                type=bool,
                default=True,
                help="After fit, evaluate the best checkpoint on the test split and print the metrics.",
            )
        return parser

    def after_fit(self) -> None:
        if not self.config[self.subcommand].get("test_after_fit", True):
            return
        if self.trainer.interrupted:
            return
        callback = self.trainer.checkpoint_callback
        ckpt_path = "best" if callback is not None and getattr(callback, "best_model_path", "") else None
        rank_zero_info(
            f"Testing {'the best checkpoint' if ckpt_path else 'the final weights'} on the test split"
        )
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path)

    def predict(
        self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None, **kwargs: Any
    ) -> None:
        """``lit-dl predict``: run ``predict_step`` and save the outputs to ``<run>/predictions.pt``.

        The file holds the concatenated outputs (class probabilities for lit_dl's tasks) in the
        predict loader's order. Under several processes each rank writes ``predictions_rank<R>.pt``
        with the share its sampler gave it.
        """
        kwargs["return_predictions"] = True
        outputs = self.trainer.predict(model, datamodule=datamodule, **kwargs)
        if not outputs:
            return
        if isinstance(outputs[0], list):  # several predict dataloaders
            outputs = [batch for loader in outputs for batch in loader]
        run_dir = Path(self.trainer.log_dir or ".")
        run_dir.mkdir(parents=True, exist_ok=True)
        world = self.trainer.world_size
        name = "predictions.pt" if world == 1 else f"predictions_rank{self.trainer.global_rank}.pt"
        torch.save(torch.cat([torch.as_tensor(o).cpu() for o in outputs]), run_dir / name)
        rank_zero_info(f"Predictions saved to {run_dir / name if world == 1 else run_dir}")

    def _run_subcommand(self, subcommand: str) -> None:
        logger = self.trainer.logger
        root = Path(logger.root_dir) if logger is not None and logger.root_dir else None
        # Listing the logger's root does not fix the run's version (reading log_dir now would).
        root_existed = root is not None and root.is_dir()
        before = set(root.iterdir()) if root_existed else set()
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            if root is not None and self.trainer.global_step == 0 and self.trainer.is_global_zero:
                run_dir = Path(self.trainer.log_dir)
                if run_dir.parent == root and run_dir not in before:
                    # Nothing was trained: the folder holds only a config copy and empty event files.
                    shutil.rmtree(run_dir, ignore_errors=True)
                if not root_existed and root.is_dir() and not any(root.iterdir()):
                    root.rmdir()
            raise


def main(args: ArgsType = None) -> None:
    """Console entry point. Bad configuration values exit with status 2 and a one-line message.

    ``lit-dl doctor ...`` takes the arguments of ``fit`` and checks the recipe (:mod:`lit_dl.doctor`).
    """
    argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, dict) else []
    try:
        if argv[:1] == ["doctor"]:
            from lit_dl.doctor.command import run_doctor  # the doctor imports this module

            sys.exit(run_doctor(argv[1:]))
        LitDLCLI(args=args)
    except Exception as err:
        config_error = _find_config_error(err)
        if config_error is None:
            raise
        print(f"lit-dl: error: {config_error}", file=sys.stderr)
        sys.exit(2)


def _find_config_error(err: BaseException | None) -> ConfigError | None:
    """The ConfigError behind ``err``: jsonargparse wraps errors raised while instantiating classes."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, ConfigError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
