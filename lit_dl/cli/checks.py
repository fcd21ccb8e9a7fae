"""Checks of the parsed command before anything is built or written: run length, trainer values, run folder.

Lightning accepts values that train to nothing (``max_epochs: 0`` then "tests the final weights") or
fail only after an epoch (``val_check_interval: 0``, a ``ZeroDivisionError``); these checks stop
them with a :class:`~lit_dl.errors.ConfigError` naming the option, before a run folder exists.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from lit_dl.errors import ConfigError

__all__ = [
    "check_cpu_processes",
    "check_run_folder",
    "check_seed_everything",
    "check_sync_batchnorm",
    "check_trainer_values",
    "usable_cpu_cores",
]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# option -> (subcommands it applies to, value is bad, what is allowed)
_TRAINER_RULES: dict[str, tuple[frozenset[str], Callable[[Any], bool], str]] = {
    "max_epochs": (frozenset({"fit"}), lambda v: v == 0, ">= 1, or -1 with max_steps for a step budget"),
    "max_steps": (frozenset({"fit"}), lambda v: v == 0, ">= 1, or -1 for no step limit"),
    "limit_train_batches": (
        frozenset({"fit"}),
        lambda v: _is_number(v) and v <= 0,
        "> 0 (a count or a fraction)",
    ),
    "accumulate_grad_batches": (frozenset(), lambda v: _is_number(v) and v < 1, ">= 1"),
    "val_check_interval": (
        frozenset(),
        lambda v: _is_number(v) and v <= 0,
        "> 0 (batches or a fraction of an epoch)",
    ),
    "check_val_every_n_epoch": (frozenset(), lambda v: _is_number(v) and v < 1, ">= 1, or null"),
    "log_every_n_steps": (frozenset(), lambda v: _is_number(v) and v < 1, ">= 1"),
    "gradient_clip_val": (frozenset(), lambda v: _is_number(v) and (v < 0 or v != v), ">= 0 (0 is off)"),
    # Lightning takes these below their range and trains as if they were unset
    "min_epochs": (frozenset({"fit"}), lambda v: _is_number(v) and v < 0, ">= 0, or null"),
    "min_steps": (frozenset({"fit"}), lambda v: _is_number(v) and v < 0, ">= 0, or null"),
    "num_sanity_val_steps": (
        frozenset({"fit"}),
        lambda v: _is_number(v) and v < -1,
        ">= 0 batches, or -1 for the whole validation split",
    ),
}


def check_trainer_values(trainer: Mapping[str, Any], subcommand: str | None) -> None:
    """Refuse trainer values that Lightning accepts but that train nothing or fail later.

    Args:
        trainer: The parsed ``trainer`` options.
        subcommand: ``fit``, ``validate``, ``test``, ``predict`` (run-length rules apply to ``fit``).

    Raises:
        ConfigError: naming the first bad option, its value and what is allowed (an empty
            ``default_root_dir`` included).
    """
    root = trainer.get("default_root_dir")
    if root is not None and not str(root).strip():
        # Lightning reads an empty root as "the current directory": checkpoints would land there.
        raise ConfigError(
            f"trainer.default_root_dir={str(root)!r} is empty; give a folder, or leave the option out "
            "to write under the current directory"
        )
    for name, (subcommands, is_bad, allowed) in _TRAINER_RULES.items():
        if subcommands and subcommand not in subcommands:
            continue
        value = trainer.get(name)
        if value is not None and is_bad(value):
            raise ConfigError(f"trainer.{name}={value!r} is not allowed here; give {allowed}")


# numpy's seeds are uint32: Lightning's seed_everything raises ValueError outside this range.
_MAX_SEED = 2**32 - 1


def check_seed_everything(seed: Any) -> None:
    """Refuse a ``seed_everything`` that Lightning's ``seed_everything`` would raise on (a traceback
    from inside the CLI's constructor), and, where no int seed is given, a ``PL_GLOBAL_SEED``
    environment variable that is not one: ``seed_everything: true`` reads it, and so does the data
    order (:func:`lit_dl.data.sampling.run_seed`) under any setting.

    Raises:
        ConfigError: ``seed`` is neither a bool nor an int in ``[0, 2**32 - 1]``, or it is not an int
            and ``PL_GLOBAL_SEED`` is set to anything but such an int.
    """
    if seed is None or isinstance(seed, bool):
        env = os.environ.get("PL_GLOBAL_SEED")
        if env is not None and not (env.strip().lstrip("-").isdigit() and 0 <= int(env) <= _MAX_SEED):
            raise ConfigError(
                f"the environment variable PL_GLOBAL_SEED={env!r} is not a seed; give an int in "
                f"[0, {_MAX_SEED}] (2**32 - 1), or unset it (seed_everything: true and the data order read it)"
            )
        return
    if not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
        raise ConfigError(
            f"seed_everything={seed!r} is not allowed; give an int in [0, {_MAX_SEED}] (2**32 - 1), "
            "true for a random seed or false for none"
        )


def check_run_folder(root: str | os.PathLike[str]) -> list[Path]:
    """Check that the run folder's root can be created and written, before anything is written.

    Args:
        root: ``trainer.default_root_dir``.

    Returns:
        The folders on the way to ``root`` that do not exist yet (deepest first): a failed run
        removes them again if they are empty.

    Raises:
        ConfigError: ``root`` is a file, lies under a file, or its nearest existing folder does not
            accept a new folder (read-only, a virtual file system, no permission).
    """
    path = Path(root).expanduser().absolute()
    if _exists(path) and not path.is_dir():
        raise ConfigError(f"trainer.default_root_dir={str(root)!r} is a file, not a folder")
    missing: list[Path] = []
    existing = path
    while not _exists(existing):
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"trainer.default_root_dir={str(root)!r} lies under {str(existing)!r}, which is a file"
        )
    _check_name_lengths(root, existing, missing)
    try:
        # Creating a folder is the only test that also holds for root, read-only mounts and /proc.
        probe = tempfile.mkdtemp(prefix=".lit-dl-write-test-", dir=existing)
    except OSError as err:
        raise ConfigError(
            f"trainer.default_root_dir={str(root)!r} cannot be created: {str(existing)!r} does not accept new "
            f"folders ({err.strerror})"
        ) from None
    os.rmdir(probe)
    return missing


def _exists(path: Path) -> bool:
    """``path.exists()``, with a name too long for the file system read as "does not exist" (the
    check of name lengths below names it)."""
    try:
        return path.exists()
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            return False
        raise


def _shortened(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else f"{text[: limit - 30]}...{text[-25:]}"


# the run's own files lie this much deeper than default_root_dir, at most
# (lightning_logs/version_N/checkpoints/epoch=E-step=S.ckpt, with room for a monitored value)
_RUN_FILE_DEPTH = 128


def _check_name_lengths(root: str | os.PathLike[str], existing: Path, missing: list[Path]) -> None:
    """Refuse folder names the file system cannot hold (ENAMETOOLONG once the first folder was made)."""
    try:
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        path_max = os.pathconf(existing, "PC_PATH_MAX")
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows) or no such limit
        return
    shown = _shortened(str(root))
    for folder in missing:
        length = len(os.fsencode(folder.name))
        if length > name_max:
            raise ConfigError(
                f"trainer.default_root_dir={shown!r} has a folder name of {length} bytes "
                f"({_shortened(folder.name, 40)!r}); the file system of {str(existing)!r} allows at most "
                f"{name_max}"
            )
    length = len(os.fsencode(missing[0] if missing else existing))
    if length > path_max - _RUN_FILE_DEPTH:
        raise ConfigError(
            f"trainer.default_root_dir={shown!r} is {length} bytes long; paths hold at most {path_max} "
            f"bytes here and the run's files lie up to {_RUN_FILE_DEPTH} deeper: give a folder of at "
            f"most {path_max - _RUN_FILE_DEPTH}"
        )


def usable_cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def check_cpu_processes(num_devices: int, on_cpu: bool, devices: Any) -> None:
    """Refuse more CPU training processes on one machine than its cores (``devices: 1000`` on CPU
    starts a thousand processes, each holding a copy of the model, and the machine stalls).

    Args:
        num_devices: The Trainer's processes per machine (``trainer.num_devices``).
        on_cpu: Whether they train on CPU.
        devices: ``trainer.devices`` as configured, for the message.

    Raises:
        ConfigError: naming the option, the cores and the largest allowed value.
    """
    cores = usable_cpu_cores()
    if on_cpu and num_devices > cores:
        raise ConfigError(
            f"trainer.devices={devices!r} starts {num_devices} CPU processes and this machine gives this "
            f"process {cores} CPU core(s); give at most {cores} (more processes than cores only slow "
            "each other down)"
        )


def check_sync_batchnorm(trainer: Mapping[str, Any], on_cpu: bool, model: nn.Module) -> None:
    """Refuse ``sync_batchnorm: true`` (``configs/trainer/ddp.yaml``) on CPU devices for a model with
    BatchNorm layers, before any process starts: torch's SyncBatchNorm runs on GPUs only, and each
    rank would stop in its first step with a long traceback.

    Raises:
        ConfigError: naming the option, the devices and the fix.
    """
    if not trainer.get("sync_batchnorm") or not on_cpu:
        return
    count = sum(isinstance(m, _BatchNorm) for m in model.modules())
    if count:
        raise ConfigError(
            f"trainer.sync_batchnorm=true: torch's SyncBatchNorm runs on GPUs only and this run's devices "
            f"are CPUs (the model has {count} BatchNorm layer(s)); add --trainer.sync_batchnorm=false"
        )
