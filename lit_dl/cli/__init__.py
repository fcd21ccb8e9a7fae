"""``lit-dl``: the command line (``lit-dl fit|validate|test|predict|doctor|export|sweep``, ``python -m lit_dl``).

One module per command: :mod:`lit_dl.cli.lightning_cli` (the Trainer's subcommands through
LightningCLI), :mod:`lit_dl.cli.doctor`, :mod:`lit_dl.cli.export`, :mod:`lit_dl.cli.sweep`. A new subcommand is one module with
a ``main(argv)`` function and one row in :data:`COMMANDS`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, NoReturn

from lit_dl.cli.preflight import exit_if_torchvision_unusable

exit_if_torchvision_unusable()  # before Lightning's import, which a broken torchvision breaks

from lightning.fabric.utilities.spike import TrainingSpikeException
from lightning.pytorch.cli import ArgsType

from lit_dl._lightning import process_rank
from lit_dl.cli import doctor, export, sweep
from lit_dl.cli.console import quiet_console
from lit_dl.cli.error_messages import to_config_error
from lit_dl.cli.lightning_cli import LitDLArgumentParser, LitDLCLI
from lit_dl.cli.signals import exit_on_signal
from lit_dl.errors import ConfigError, NonFiniteError

__all__ = [
    "COMMANDS",
    "Command",
    "LitDLArgumentParser",
    "LitDLCLI",
    "main",
    "release_process_group",
    "run_command",
]


class Command(NamedTuple):
    """A subcommand that is not a Trainer method: ``main`` takes the arguments after its name."""

    main: Callable[[list[str]], Any]
    help: str


# Subcommands besides LightningCLI's own (fit, validate, test, predict), shown in `lit-dl --help`.
# `lit-dl <name> ...` calls `main(argv)` inside run_command's error handling.
COMMANDS: dict[str, Command] = {
    "doctor": Command(
        doctor.main, "Check a recipe for the classic training pitfalls (takes fit's arguments)."
    ),
    "export": Command(
        export.export_main,
        "Write a checkpoint's network as a file for serving (state_dict, torchscript, exported_program, onnx).",
    ),
    "sweep": Command(
        sweep.main,
        "Search hyperparameters with Optuna; each trial is a fit run (--sweep configs/sweeps/*.yaml).",
    ),
}


def main(args: ArgsType = None) -> None:
    """Console entry point: ``lit-dl <subcommand> ...``.

    Bad input (a value, file, checkpoint or environment, whether lit_dl, Lightning, torch or
    jsonargparse found it) prints one line ``lit-dl: error: ...`` (once, on rank 0) and exits with
    status 2; other exceptions keep their traceback. ``LIT_DL_TRACEBACK=1`` shows the traceback of
    bad input too.
    """
    run_command(lambda: _dispatch(args))
    release_process_group()


def release_process_group() -> None:
    """Destroy the default process group, if a distributed run set one up, once the command is done.

    Lightning leaves the group alive after ``fit``/``test``. A process that then exits with it still
    alive can abort ("terminate called without an active exception", SIGABRT): Gloo's worker threads
    still hold tensors when the interpreter shuts down (pytorch/pytorch#190489, #179291); seen here
    on one run in twelve of the two-node ``torchrun`` test, after which the other node waited
    forever. Only after a successful command: after an error, other ranks may still be inside a
    collective, and destroying the group then can deadlock (torchtitan does the same).
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def run_command(command: Callable[[], Any]) -> Any:
    """Call ``command()`` with ``lit-dl``'s error handling (for scripts built on :class:`LitDLCLI`).

    SIGTERM or SIGINT stop the command with status ``128 + signum`` on every rank, after a checkpoint
    where training had started (:mod:`lit_dl.cli.signals`).

    Returns:
        What ``command`` returns.

    Raises:
        SystemExit: status 2, after printing ``lit-dl: error: <one line>``, for bad input; status 1
            after one line for a run stopped as diverged (``NonFiniteGuard``, Lightning's
            ``SpikeDetection``); 143 or 130 after SIGTERM or SIGINT.
    """
    quiet_console()
    with exit_on_signal():
        try:
            return command()
        except (NonFiniteError, TrainingSpikeException) as err:  # a diverged run: one line, status 1
            if process_rank() == 0:
                print(f"lit-dl: error: {err}", file=sys.stderr)
            sys.exit(1)
        except Exception as err:
            config_error = to_config_error(err)
            if config_error is None or os.environ.get("LIT_DL_TRACEBACK"):
                raise
            _exit_with(config_error)


def _dispatch(args: ArgsType) -> None:
    argv = sys.argv[1:] if args is None else args
    if isinstance(argv, (list, tuple)) and argv and argv[0] in COMMANDS:
        COMMANDS[argv[0]].main([str(a) for a in argv[1:]])
        return
    if isinstance(argv, (list, tuple)) and list(argv[:1]) in (["-h"], ["--help"]):
        try:
            LitDLCLI(args=args)
        finally:  # Lightning's parser knows only the Trainer's subcommands
            print("\nMore subcommands (`lit-dl <name> --help`):")
            for name, command in COMMANDS.items():
                print(f"    {name:<20}{command.help}")
        return
    LitDLCLI(args=args)


def _exit_with(error: ConfigError) -> NoReturn:
    """Print the error as one line on global rank 0 (every rank of a DDP run raises it) and exit 2."""
    if process_rank() == 0:
        print(f"lit-dl: error: {' '.join(str(error).split())}", file=sys.stderr)
    sys.exit(2)
