"""``lit-dl``: the LightningCLI entry point (``lit-dl fit|validate|test|predict``, ``python -m lit_dl``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info

from lit_dl.errors import ConfigError
from lit_dl.models import ClassificationTask

__all__ = ["LitDLCLI", "main"]


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

    def _run_subcommand(self, subcommand: str) -> None:
        logger = self.trainer.logger
        root = Path(logger.root_dir) if logger is not None and logger.root_dir else None
        # Listing the logger's root does not fix the run's version (reading log_dir now would).
        before = set(root.iterdir()) if root is not None and root.is_dir() else set()
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            if root is not None and self.trainer.global_step == 0 and self.trainer.is_global_zero:
                run_dir = Path(self.trainer.log_dir)
                if run_dir.parent == root and run_dir not in before:
                    # Nothing was trained: the folder holds only a config copy and empty event files.
                    shutil.rmtree(run_dir, ignore_errors=True)
            raise


def main(args: ArgsType = None) -> None:
    """Console entry point. Bad configuration values exit with status 2 and a one-line message."""
    try:
        LitDLCLI(args=args)
    except ConfigError as err:
        print(f"lit-dl: error: {err}", file=sys.stderr)
        sys.exit(2)
