"""``lit-dl fit|validate|test|predict``: lit_dl's LightningCLI and its argument parser."""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import fsspec
import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_dl._lightning import trainer_callbacks
from lit_dl.callbacks import PredictionWriter
from lit_dl.callbacks.null_profiler import NullProfiler
from lit_dl.checkpointing.atomic_io import install_atomic_io
from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.checkpointing.loading import (
    check_resumable,
    find_hpc_checkpoint,
    find_last_checkpoint,
    load_checkpoint,
    refuse_non_finite_weights,
)
from lit_dl.checkpointing.model_differences import (
    NEVER_FROM_CHECKPOINT,
    buildable_from_checkpoint,
    checkpoint_model_differences,
    format_differences,
)
from lit_dl.cli.checks import (
    check_cpu_processes,
    check_run_folder,
    check_seed_everything,
    check_sync_batchnorm,
    check_trainer_values,
)
from lit_dl.cli.config_files import PARSER_MODE, resolve_config_arguments
from lit_dl.cli.console import quiet_console
from lit_dl.cli.error_messages import (
    summarize_parse_error,
    to_config_error,
    trainer_error,
    training_error,
)
from lit_dl.cli.extensions import check_extensions, missing_package_error, one_weight_average, plain_values
from lit_dl.cli.fit_summary import MonitorSummary, fit_warning, monitor_summary
from lit_dl.cli.run_folder import RunFolderCleanup, fix_logger_versions, reserve_run_folder
from lit_dl.cli.run_hparams import RunHparams
from lit_dl.cli.save_config import SaveRunConfig
from lit_dl.cli.signals import watch_trainer
from lit_dl.data.exact_eval import shard_eval_loaders
from lit_dl.errors import ConfigError
from lit_dl.models import ClassificationTask

__all__ = ["LitDLArgumentParser", "LitDLCLI"]

# Lightning's CLI calls jsonargparse APIs that jsonargparse now deprecates; users can do nothing about it.
os.environ.setdefault("JSONARGPARSE_DEPRECATION_WARNINGS", "off")

# `ckpt_path` values that Lightning resolves itself rather than opening a file of that name.
_CKPT_ALIASES = ("best", "last", "hpc", "registry")


class LitDLArgumentParser(LightningArgumentParser):
    """The CLI's parser: a bad value raises a one-line :class:`ConfigError` instead of printing usage.

    Args:
        lit_dl_subcommand: The subcommand this parser reads (``fit``, ``test``, ...), so that
            :meth:`LitDLCLI.add_arguments_to_parser` can add subcommand-specific options.
    """

    def __init__(self, *args: Any, lit_dl_subcommand: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lit_dl_subcommand = lit_dl_subcommand

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse's inner parsers: it catches these and tries alternatives
            super().error(message, ex)
        raise ConfigError(summarize_parse_error(message)) from ex

    def save(self, cfg: Any, path: str, *args: Any, skip_validation: bool = True, **kwargs: Any) -> None:
        """Write ``cfg`` (the run folder's ``config.yaml``) without validating it again: it was validated
        when parsed, and a second validation re-imports and re-checks every class, a quarter of a
        second per run (more than the whole training of a small recipe's epoch)."""
        super().save(cfg, path, *args, skip_validation=skip_validation, **kwargs)


class LitDLCLI(LightningCLI):
    """LightningCLI with lit_dl's defaults.

    - ``model`` is any :class:`~lit_dl.models.ClassificationTask` subclass and ``data`` any
      ``LightningDataModule``, chosen by ``class_path`` (downstream classes included). As with
      LightningCLI, ``LitDLCLI(MyModel, MyData)`` fixes the classes instead (``--model.hidden 64``;
      ``subclass_mode_model=True`` allows subclasses of ``MyModel`` by ``class_path``).
    - ``--config`` takes a path or the name of a shipped recipe (:mod:`lit_dl.cli.config_files`).
    - Every run writes into one versioned run folder, ``<default_root_dir>/lightning_logs/version_N``:
      the config copy, TensorBoard events (and every other logger's files: the loggers agree on one
      ``version_N``), checkpoints, profiler traces. Re-running a command starts a new version, taken
      with an atomic ``mkdir`` when the command starts (runs started at once never share one); nothing
      is written to the current directory.
    - The config copy records what trained: the values Lightning's ``LearningRateFinder`` and
      ``BatchSizeFinder`` found replace the configured ones, the tuners left out
      (:class:`~lit_dl.cli.save_config.SaveRunConfig`).
    - Lightning's callbacks, loggers and profilers that need a package that is not installed, or
      cannot work with lit_dl, are refused in one line (:mod:`lit_dl.cli.extensions`).
    - ``fit`` ends by testing the best checkpoint (``--test_after_fit false`` turns that off).
    - A checkpoint never rewrites the config: ``--ckpt_path`` with a checkpoint whose model arguments
      differ from the config is an error naming each one, unless ``--model_from_ckpt true``; the
      optimizer and LR scheduler always come from the config.
    - Bad values, files and checkpoints raise :class:`~lit_dl.errors.ConfigError` before anything is
      written; a run that fails before its first optimizer step leaves no run folder behind.

    Args:
        model_class: The model class, as LightningCLI's; ``None``: any ``ClassificationTask`` by ``class_path``.
        datamodule_class: The data module class; ``None``: any ``LightningDataModule`` by ``class_path``.
        args: The command line (``sys.argv[1:]`` when ``None``), keyword-only.
        run: Run the subcommand, as LightningCLI's ``run``.
        **kwargs: LightningCLI's other arguments (``trainer_class``, ``trainer_defaults``, ...).
    """

    run_as: str | None = None
    """Parsed without subcommands (``run=False``), read the config as this subcommand's: its
    ``--ckpt_path`` rules apply (:class:`~lit_dl.doctor.DoctorCLI` reads a ``fit`` config)."""

    def __init__(
        self,
        model_class: type[L.LightningModule] | Callable[..., L.LightningModule] | None = None,
        datamodule_class: type[L.LightningDataModule] | Callable[..., L.LightningDataModule] | None = None,
        *,
        args: ArgsType = None,
        run: bool = True,
        **kwargs: Any,
    ) -> None:
        for name, given in (("model_class", model_class), ("datamodule_class", datamodule_class)):
            if given is not None and not callable(given):
                raise TypeError(
                    f"LitDLCLI's {name} must be a class, as LightningCLI's, got {given!r}; "
                    "the command line goes in args=[...]"
                )
        # LightningCLI's convention: a class given is the one class (--model.hidden ...), unless
        # subclass_mode_* says otherwise; none given is lit_dl's: any task or data module by class_path.
        if model_class is None:
            model_class = ClassificationTask
            kwargs.setdefault("subclass_mode_model", True)
        if datamodule_class is None:
            datamodule_class = L.LightningDataModule
            kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("save_config_callback", SaveRunConfig)  # config.yaml with the tuned values
        parser_kwargs = kwargs.setdefault("parser_kwargs", {"default_env": False})
        parser_kwargs.setdefault("parser_mode", PARSER_MODE)  # lit_dl:// names inside config files
        for name in self.subcommands():
            parser_kwargs.setdefault(name, {}).setdefault("lit_dl_subcommand", name)
        kwargs.setdefault("parser_class", LitDLArgumentParser)
        # The optimizer and scheduler are model arguments (model.init_args.optimizer): Lightning's
        # top-level --optimizer would replace configure_optimizers with one flat parameter group.
        kwargs.setdefault("auto_configure_optimizers", False)
        quiet_console()
        self._configured_model: Any = None
        self._hidden_ckpt_path: Any = None
        self._created_dirs: list[Path] = []
        self._resumed_step = 0  # the --ckpt_path checkpoint's global_step
        self._runs_subcommand = run  # then rank 0 takes the run folder when the subcommand starts
        super().__init__(model_class, datamodule_class, args=args, run=run, **kwargs)

    # ---------------------------------------------------------------------------------------------
    # Parsing
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        subcommand = getattr(parser, "lit_dl_subcommand", None)
        if subcommand == "fit":
            parser.add_argument(
                "--test_after_fit",
                type=bool,
                default=True,
                help="After fit, evaluate the best checkpoint on the test split and print the metrics.",
            )
        elif subcommand is not None:  # so that a fit run's config.yaml serves every subcommand as is
            parser.add_argument("--test_after_fit", type=bool, default=True, help="Ignored (fit's option).")
        if subcommand is not None:
            self.add_model_from_ckpt_argument(parser)

    @staticmethod
    def add_model_from_ckpt_argument(parser: LightningArgumentParser) -> None:
        """``--model_from_ckpt``: the opt-in that lets a ``--ckpt_path`` checkpoint's model arguments win."""
        parser.add_argument(
            "--model_from_ckpt",
            type=bool,
            default=False,
            help="Build the model from the --ckpt_path checkpoint's hyper-parameters where they differ "
            "from the config (default: such a difference is an error). The optimizer and LR scheduler "
            "always come from the config.",
        )

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        """Parse, with ``--config`` names resolved and files checked, then apply the checkpoint rule."""
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, (list, tuple)):
            self.config = parser.parse_args(resolve_config_arguments([str(a) for a in args]))
        else:
            super().parse_arguments(parser, args)
        check_seed_everything(self._command_config().get("seed_everything"))
        self._check_checkpoint_against_config()
        self._merge_checkpoint_hparams()

    def _command_config(self) -> Any:
        """The parsed options of the command: the subcommand's namespace, or the whole config without one."""
        return self._run_config()[1]

    def _run_config(self) -> tuple[str | None, Any]:
        """``(subcommand, its part of the config)``; parsed without subcommands, ``(run_as, the config)``."""
        subcommand = self.config.get("subcommand")
        if subcommand:
            return subcommand, self.config[subcommand]
        return self.run_as, self.config

    def _check_checkpoint_against_config(self) -> None:
        """Refuse a ``--ckpt_path`` whose model hyper-parameters differ from the config (unless opted in).

        Runs before Lightning merges the checkpoint's hyper-parameters into the config; what the
        config said is kept, and :meth:`before_instantiate_classes` puts it back.
        """
        subcommand, config = self._run_config()
        if not subcommand:
            return
        self._configured_model = copy.deepcopy(config.get("model"))
        ckpt_path = config.get("ckpt_path")
        if subcommand == "fit" and ckpt_path in (None, "hpc"):
            ckpt_path = self._slurm_resume_checkpoint(config) or ckpt_path
        if not ckpt_path:
            return
        ckpt_path = str(ckpt_path)
        if subcommand == "fit" and ckpt_path == "last" and not Path(ckpt_path).exists():
            ckpt_path = self._resolve_last_checkpoint(config)
        if not Path(ckpt_path).exists() and (ckpt_path in _CKPT_ALIASES or ckpt_path.startswith("registry:")):
            if subcommand != "fit" and ckpt_path in ("best", "last"):
                raise ConfigError(
                    f"ckpt_path={ckpt_path!r} means a checkpoint of this process's own fit, and `lit-dl "
                    f"{subcommand}` runs none; give the .ckpt file (lightning_logs/version_N/checkpoints/...)"
                )
            return
        try:
            checkpoint = load_checkpoint(ckpt_path, mmap=True)
        except ConfigError as err:
            if config.get("ckpt_path") in (None, "hpc"):  # found, not given: say where it comes from
                raise ConfigError(
                    f"{err}; it is the SLURM requeue checkpoint that fit resumes from under SLURM "
                    "(remove it, or pass --ckpt_path, to start otherwise)"
                ) from err
            raise
        if config.get("ckpt_path") in (None, "hpc"):
            _refuse_another_jobs_checkpoint(checkpoint, ckpt_path)
        self._resumed_step = int(checkpoint.get("global_step") or 0)
        if subcommand == "fit":
            check_resumable(checkpoint, ckpt_path)
        else:  # weights to evaluate: intact and finite (fit's restore checks the first)
            verify_checksums(ckpt_path)
            refuse_non_finite_weights(checkpoint, ckpt_path)
        hparams = checkpoint.get("hyper_parameters") or {}
        differences = checkpoint_model_differences(hparams, config.get("model"))
        if differences and not (config.get("model_from_ckpt") and buildable_from_checkpoint(differences)):
            raise ConfigError(format_differences(ckpt_path, differences))

    def _merge_checkpoint_hparams(self) -> None:
        """With ``--model_from_ckpt``, merge the ``--ckpt_path`` checkpoint's hyper-parameters into the
        model config (LightningCLI's own merge, through the public parser); and keep LightningCLI from
        merging them itself.

        LightningCLI merges a checkpoint's hyper-parameters under every subcommand, between parsing and
        :meth:`before_instantiate_classes`, and fails on a checkpoint written by plain Lightning (its
        hyper-parameters carry no ``_class_path``, so they cannot fill a ``class_path`` model config:
        "Option 'in_features' is not accepted"). Without ``--model_from_ckpt`` the merge would be undone
        anyway (:meth:`_restore_configured_model`), so the ``ckpt_path`` is hidden from it until
        :meth:`before_instantiate_classes` puts it back; with it, the merge is done here, and the
        hyper-parameters of a plain-Lightning checkpoint fill the configured class.
        """
        subcommand, config = self._run_config()
        if subcommand is None:
            return
        ckpt_path = config.get("ckpt_path")
        if self.config.get("subcommand"):
            self._hidden_ckpt_path = ckpt_path
            config["ckpt_path"] = None
        if not ckpt_path or not Path(ckpt_path).is_file():
            return
        if self.config.get("subcommand") and not config.get("model_from_ckpt"):
            return
        hparams = dict(load_checkpoint(ckpt_path, mmap=True).get("hyper_parameters") or {})
        hparams.pop("_instantiator", None)
        if not hparams:
            return
        model = config.get("model")
        configured_class = model.get("class_path") if hasattr(model, "get") else None
        class_path = hparams.pop("_class_path", configured_class)
        if class_path is not None:
            hparams = {"class_path": class_path, "dict_kwargs": hparams}
        update = {"model": hparams}
        self.config = self.parser.parse_object(
            {self.config["subcommand"]: update} if self.config.get("subcommand") else update, self.config
        )

    @staticmethod
    def _slurm_resume_checkpoint(config: Any) -> str | None:
        """Under SLURM, the ``hpc_ckpt_<n>.ckpt`` that Lightning's ``fit`` resumes from when given no
        ``ckpt_path`` (a requeued job), so that it is checked like a ``--ckpt_path`` before anything runs."""
        if not SLURMEnvironment.detect():
            return None
        root = (config.get("trainer") or {}).get("default_root_dir") or os.getcwd()
        if fsspec.utils.get_protocol(str(root)) != "file":
            return None
        found = find_hpc_checkpoint(root)
        return str(found) if found is not None else None

    @staticmethod
    def _resolve_last_checkpoint(config: Any) -> str:
        """``fit --ckpt_path last``: the newest ``last.ckpt`` of the earlier runs under the same root.

        Lightning's own ``"last"`` looks in this run's new (empty) version folder and would start from
        scratch; see :func:`lit_dl.checkpointing.loading.find_last_checkpoint`. The resumed run writes into a new
        ``version_N`` folder.
        """
        root = (config.get("trainer") or {}).get("default_root_dir") or os.getcwd()
        ckpt_path = str(find_last_checkpoint(Path(root) / "lightning_logs"))
        config["ckpt_path"] = ckpt_path
        rank_zero_info(f"--ckpt_path last: resuming from {ckpt_path}")
        return ckpt_path

    def before_instantiate_classes(self) -> None:
        subcommand = self.subcommand
        # a composed EMA/SWA switch replaces the recipe's average (also for LitDLCLI(run=False))
        one_weight_average(self.config[subcommand] if subcommand else self.config)
        if subcommand is None:
            return
        config = self.config[subcommand]
        if self._hidden_ckpt_path is not None:
            config["ckpt_path"], self._hidden_ckpt_path = self._hidden_ckpt_path, None
        self._restore_configured_model(config)
        trainer = config.get("trainer") or {}
        check_trainer_values(trainer, subcommand)
        check_extensions(config, subcommand)  # Lightning's callbacks: optional packages, what cannot work
        plain_values(config)  # so that the config can be written (Timer's Interval, SWA's device)
        self._created_dirs = check_run_folder(trainer.get("default_root_dir") or os.getcwd())

    def _restore_configured_model(self, config: Any) -> None:
        """Undo LightningCLI's merge of the checkpoint's hyper-parameters (what LightningCLI does with ``--ckpt_path`` under a subcommand).

        Without ``--model_from_ckpt`` the configured model is put back whole (the check found no
        difference, so only the optimizer and scheduler could have changed); with it, the merged model
        is kept but the optimizer and scheduler are the configured ones.
        """
        configured = self._configured_model
        if configured is None:
            return
        if not config.get("model_from_ckpt"):
            config["model"] = copy.deepcopy(configured)
            return
        model = config.get("model")
        dict_kwargs = model.get("dict_kwargs") if hasattr(model, "get") else None
        for key in NEVER_FROM_CHECKPOINT:
            if isinstance(dict_kwargs, dict):
                dict_kwargs.pop(key, None)
            init_args = model.get("init_args") if hasattr(model, "get") else None
            original = configured.get("init_args") if hasattr(configured, "get") else None
            if init_args is not None and original is not None and key in original:
                init_args[key] = copy.deepcopy(original[key])

    # ---------------------------------------------------------------------------------------------
    # Building
    def instantiate_classes(self) -> None:
        try:
            with _init_from_unread_under_ckpt_path(self._command_config()):
                super().instantiate_classes()
        except ValueError as err:
            # Model and data constructors validate their arguments with ValueError (lit_dl's STYLE.md).
            error = to_config_error(err) or missing_package_error(err)
            raise error or ConfigError(" ".join(str(err).split())) from err
        if self.datamodule is not None:
            shard_eval_loaders(self.datamodule)  # exact evaluation under DDP whatever the data module

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        trainer_config = self._command_config().get("trainer") or {}
        # Only for a trainer class that takes a profiler (the parsed options are its signature's, which
        # is how Lightning decides whether to pass callbacks) and is not barebones (that refuses one).
        if (
            "profiler" in trainer_config
            and trainer_config.get("profiler") is None
            and not trainer_config.get("barebones")
        ):
            kwargs.setdefault("profiler", NullProfiler())  # the pass-through profiler, cheaper per hook
        try:
            trainer = super().instantiate_trainer(**kwargs)
        except ConfigError:
            raise
        except (ValueError, TypeError, ImportError, MisconfigurationException) as err:
            # The Trainer's constructor only validates its options: accelerator, devices, strategy...
            raise trainer_error(err, self._command_config().get("trainer") or {}) from err
        check_cpu_processes(
            trainer.num_devices,
            isinstance(trainer.accelerator, CPUAccelerator),
            trainer_config.get("devices"),
        )
        # Every checkpoint file written through the strategy is atomic and checked on load, whichever
        # callbacks the config has (lit_dl.checkpointing.atomic_io).
        install_atomic_io(trainer.strategy)
        if not (self._runs_subcommand and trainer.is_global_zero):  # else taken when the command starts
            fix_logger_versions(trainer.loggers)  # every logger into the one run folder
        command, config = self._run_config()
        if command in ("fit", None):  # the run's comparable record in TensorBoard's HPARAMS tab
            trainer_callbacks(trainer).append(
                RunHparams(config.get("config") or (), config.get("seed_everything"))
            )
        return trainer

    # ---------------------------------------------------------------------------------------------
    # Subcommands: Lightning calls the CLI's method of the subcommand's name when it has one.
    def _guarded(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a Trainer method in a run folder of its own (taken atomically: runs started at once
        never share one); if it fails or is interrupted before its first optimizer step, remove that
        folder. A signal stops it at a batch boundary (:mod:`lit_dl.cli.signals`)."""
        cleanup = RunFolderCleanup(self.trainer, self._created_dirs, self._resumed_step)
        watch_trainer(self.trainer)
        if "weights_only" in kwargs and kwargs["weights_only"] is None:
            kwargs["weights_only"] = (
                True  # checkpoints carry tensors and plain values only (lit_dl.checkpointing.loading)
            )
        try:
            if self.trainer.is_global_zero:
                reserve_run_folder(self.trainer.loggers)
            return method(*args, **kwargs)
        except BaseException as err:
            # named before the cleanup, which removes the run folder the message names
            rewritten = training_error(err, self.trainer) if isinstance(err, Exception) else None
            cleanup.after_failure()
            if rewritten is not None and not os.environ.get("LIT_DL_TRACEBACK"):
                raise rewritten from err
            raise

    def fit(self, model: L.LightningModule, **kwargs: Any) -> None:
        """``lit-dl fit``: ``Trainer.fit``; then, unless ``--test_after_fit false``, test the best checkpoint."""
        # Before Trainer.fit, which launches the DDP processes; Lightning converts BatchNorm for fit only.
        trainer_config = self._command_config().get("trainer") or {}
        check_sync_batchnorm(trainer_config, isinstance(self.trainer.accelerator, CPUAccelerator), model)
        self._guarded(self.trainer.fit, model, **kwargs)

    def validate(self, model: L.LightningModule, **kwargs: Any) -> None:
        """``lit-dl validate``: ``Trainer.validate``."""
        self._guarded(self.trainer.validate, model, **kwargs)

    def test(self, model: L.LightningModule, **kwargs: Any) -> None:
        """``lit-dl test``: ``Trainer.test``."""
        self._guarded(self.trainer.test, model, **kwargs)

    def after_fit(self) -> None:
        """Test the best checkpoint (unless ``--test_after_fit false``), naming it next to the last
        epoch's monitored value, and warn when the run ended far from its best
        (:mod:`lit_dl.cli.fit_summary`)."""
        if self.trainer.interrupted:
            return
        summary = monitor_summary(self.trainer, self.model)
        warning = fit_warning(summary) if summary is not None else None
        try:
            self._test_after_fit(summary)
        finally:
            if warning is not None:  # after the metrics table, where a user reads the result
                rank_zero_warn(warning)

    def _test_after_fit(self, summary: MonitorSummary | None) -> None:
        if not self.config[self.subcommand].get("test_after_fit", True):
            return
        missing = _missing_test_split(self.model, self.datamodule)
        if missing:
            rank_zero_info(f"Test after fit skipped: {missing} (--test_after_fit false silences this)")
            return
        callback = self.trainer.checkpoint_callback
        ckpt_path = "best" if callback is not None and getattr(callback, "best_model_path", None) else None
        if summary is not None and ckpt_path is not None:
            rank_zero_info(summary.testing_line())
        else:
            rank_zero_info(
                f"Testing {'the best checkpoint' if ckpt_path else 'the final weights'} on the test split"
            )
        self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path)

    def predict(
        self, model: L.LightningModule, datamodule: L.LightningDataModule | None = None, **kwargs: Any
    ) -> None:
        """``lit-dl predict``: write ``predict_step``'s outputs to ``<run>/predictions.pt``.

        One file in dataset order however many processes predicted (see
        :class:`~lit_dl.callbacks.PredictionWriter`), unless a ``PredictionWriter`` is configured.
        """
        callbacks = trainer_callbacks(self.trainer)
        if not any(isinstance(cb, PredictionWriter) for cb in callbacks):
            callbacks.append(PredictionWriter())
        kwargs["return_predictions"] = False
        self._guarded(self.trainer.predict, model, datamodule=datamodule, **kwargs)


def _refuse_another_jobs_checkpoint(checkpoint: dict[str, Any], path: str) -> None:
    """Refuse an ``hpc_ckpt`` that another SLURM job wrote: Lightning resumes the highest one in
    ``default_root_dir`` whichever job wrote it, which would continue that job's run in this job's
    folder. A ``ModelCheckpoint``'s state names the checkpoint folder of the run that wrote the file,
    ``.../version_<job id>/checkpoints`` under SLURM."""
    folder = f"version_{SLURMEnvironment.job_id()}"
    states = checkpoint.get("callbacks")
    for state in states.values() if isinstance(states, dict) else ():
        dirpath = state.get("dirpath") if isinstance(state, dict) else None
        if not isinstance(dirpath, str):
            continue
        run = Path(dirpath).parent.name
        if run.startswith("version_") and run != folder:
            raise ConfigError(
                f"checkpoint {path!r} was written by another run ({run}: its checkpoints are in {dirpath}), "
                f"not by this SLURM job's ({folder}), and fit under SLURM resumes from it; remove it, give "
                "each job its own --trainer.default_root_dir, or pass --ckpt_path"
            )


def _missing_test_split(model: L.LightningModule, datamodule: L.LightningDataModule | None) -> str | None:
    """Why fit-then-test cannot test, or ``None``: neither the data module nor the model defines
    ``test_dataloader`` (Lightning's default raises "must be implemented")."""
    if datamodule is not None:
        if is_overridden("test_dataloader", datamodule):
            return None
        return f"the data module {type(datamodule).__name__} has no test split (no test_dataloader)"
    if is_overridden("test_dataloader", model):
        return None
    return f"the model {type(model).__name__} defines no test_dataloader and no data module is given"


@contextlib.contextmanager
def _init_from_unread_under_ckpt_path(config: Any) -> Iterator[None]:
    """Build the model without reading ``init_from`` when ``--ckpt_path`` gives its weights.

    A fine-tuned run's ``config.yaml`` keeps its ``init_from``; ``test``, ``predict``, ``export`` or a
    resumed ``fit`` with that config and one of the run's checkpoints load the checkpoint's weights,
    so the source file is neither read nor needed (it may be gone). The config itself (and the
    ``config.yaml`` written from it) keeps the value.
    """
    model = config.get("model") if config.get("ckpt_path") else None
    init_args = model.get("init_args") if model is not None and hasattr(model, "get") else None
    if init_args is None or not init_args.get("init_from"):
        yield
        return
    init_from, init_args["init_from"] = init_args["init_from"], None
    rank_zero_info(f"init_from {init_from} not read: the weights come from --ckpt_path")
    try:
        yield
    finally:
        init_args["init_from"] = init_from
