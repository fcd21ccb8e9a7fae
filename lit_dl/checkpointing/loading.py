"""Loading checkpoint and state-dict files safely, with one clear error for every way a file can be
wrong; finding the checkpoint to resume from.

Every such file lit_dl reads goes through ``torch.load(weights_only=True)``: tensors, numbers, strings
and plain containers load; any other pickled object is refused before it is built, so a crafted file
cannot run code (:class:`lit_dl.errors.UnsafeCheckpointError`, one line). Its content is first checked
against the checksums inside it (:func:`lit_dl.checkpointing.integrity.verify_checksums`;
:class:`lit_dl.errors.CorruptCheckpointError`, one line).
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import re
import stat
import struct
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from packaging.version import InvalidVersion, Version

from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.errors import ConfigError, CorruptCheckpointError, UnsafeCheckpointError

__all__ = [
    "check_readable_file",
    "check_resumable",
    "find_hpc_checkpoint",
    "find_last_checkpoint",
    "load_checkpoint",
    "load_weights_file",
    "refuse_non_finite_weights",
    "refuse_unsafe_pickles",
]

# The first bytes of what torch.save writes: a zip archive (a local file header), or in its legacy
# format a pickle (the PROTO opcode). A file that starts with neither is not a torch file (a YAML
# config, say); a zip header without a complete archive is a truncated one.
_TORCH_FILE_STARTS = (b"PK\x03\x04", b"\x80")

# What `torch.load(weights_only=True)` names when it refuses a pickled object, e.g.
# "Trying to load unsupported GLOBAL posix.system whose module posix is blocked."
_UNSAFE_GLOBAL = re.compile(r"unsupported GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)")


def load_checkpoint(
    path: str | os.PathLike[str], map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load a Lightning checkpoint with ``torch.load(weights_only=True)``: tensors and plain values only.

    A checkpoint is a pickle, and an unrestricted pickle runs any code it names when loaded; so a
    file that holds anything but tensors, containers and numbers is refused, not loaded.

    Args:
        path: The ``.ckpt`` file.
        map_location: Where to put the tensors (``torch.load``'s argument).
        mmap: Map the tensors' storage from the file instead of reading it (``torch.load``'s
            argument): for reading the hyper-parameters of a large checkpoint without loading it. The
            checksums are not checked then (that reads the whole file).

    Returns:
        The checkpoint dictionary (``state_dict``, ``hyper_parameters``, loop and optimizer states).

    Raises:
        ConfigError: the file is missing, a directory, empty, truncated, not a torch file, corrupt
            (:class:`~lit_dl.errors.CorruptCheckpointError`), holds objects that safe loading refuses,
            or is not a dictionary with a ``state_dict`` and the ``pytorch-lightning_version`` that
            Lightning writes.
    """
    checkpoint = _read_torch_file(path, "checkpoint", map_location, mmap)
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"checkpoint {str(path)!r} is not a Lightning checkpoint (a dictionary with a 'state_dict')"
        )
    if "pytorch-lightning_version" not in checkpoint:
        # Lightning reads this key first when it restores a checkpoint (a KeyError without it).
        raise ConfigError(
            f"checkpoint {str(path)!r} is not a Lightning checkpoint (a plain state dict? start from its "
            "weights with model.init_args.init_from)"
        )
    _check_entries(checkpoint, str(path))
    return checkpoint


def _is_version(value: Any) -> bool:
    try:
        Version(value)
    except (InvalidVersion, TypeError):
        return False
    return isinstance(value, str)


def _is_list_of_dicts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, Mapping) for item in value)


# entry -> (its value is what Lightning writes, what that is); an entry that is absent is not checked.
# Lightning reads each as this type when it restores (a version it parses, dicts it iterates), and
# fails deep inside otherwise (packaging's InvalidVersion, AttributeError, TypeError).
_ENTRIES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "pytorch-lightning_version": (_is_version, "a version string such as '2.6.6'"),
    "state_dict": (lambda v: isinstance(v, Mapping), "a dictionary of tensors"),
    "hyper_parameters": (
        lambda v: v is None or isinstance(v, Mapping),
        "a dictionary of the model's arguments",
    ),
    "loops": (lambda v: isinstance(v, Mapping), "a dictionary of loop states"),
    "callbacks": (lambda v: isinstance(v, Mapping), "a dictionary of callback states"),
    "optimizer_states": (_is_list_of_dicts, "a list of optimizer state dictionaries"),
    "lr_schedulers": (_is_list_of_dicts, "a list of scheduler state dictionaries"),
}


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_entries(checkpoint: Mapping[str, Any], path: str) -> None:
    """Refuse a checkpoint whose entries are not of the types Lightning writes (a hand-edited or
    damaged file): one line naming the entry, its type and what Lightning writes there."""
    for key, (ok, allowed) in _ENTRIES.items():
        if key in checkpoint and not ok(checkpoint[key]):
            value = checkpoint[key]
            raise ConfigError(
                f"checkpoint {path!r} has {key}={_shown(value)} ({type(value).__name__}); Lightning writes "
                f"{allowed} there: the file is damaged or was not written by Lightning"
            )
    for name, value in checkpoint["state_dict"].items():
        # a module's get_extra_state() may hold any plain value (nn.Module's `_extra_state` entries)
        if not isinstance(value, torch.Tensor) and not str(name).endswith("_extra_state"):
            raise ConfigError(
                f"checkpoint {path!r} has state_dict entry {name!r} = {_shown(value)} ({type(value).__name__}); "
                "a state_dict holds tensors: the file is damaged or was not written by Lightning"
            )


def check_resumable(checkpoint: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Refuse to resume ``fit`` from a checkpoint without the optimizer and scheduler states that
    Lightning restores (``ModelCheckpoint(save_weights_only=True)`` writes the weights only).

    Raises:
        ConfigError: naming the missing entry and the way to start from the weights instead.
    """
    for key in ("optimizer_states", "lr_schedulers"):
        if key not in checkpoint:
            raise ConfigError(
                f"checkpoint {str(path)!r} has no {key} (written with save_weights_only=True?), so fit "
                f"cannot resume from it; start a new run from its weights with "
                f"--model.init_args.init_from={path!s}"
            )


def _read_torch_file(path: str | os.PathLike[str], what: str, map_location: Any, mmap: bool) -> Any:
    """``torch.load(path, weights_only=True)`` with every way the file can be bad turned into one
    line: missing, a directory, empty, truncated, not a torch file, or holding pickled objects
    (:class:`UnsafeCheckpointError`). ``what`` names the file in the message."""
    file = Path(path)
    check_readable_file(file, what)
    if file.stat().st_size == 0:
        raise ConfigError(f"{what} {str(path)!r} is an empty file")
    not_torch = ConfigError(
        f"{what} {str(path)!r} is not a torch checkpoint file (a file that torch.save writes)"
    )
    with file.open("rb") as f:
        if not f.read(4).startswith(_TORCH_FILE_STARTS):
            raise not_torch
    is_zip = zipfile.is_zipfile(file)
    if not mmap:
        verify_checksums(file)
    try:
        # mmap needs torch's zip format; a file without it is not a checkpoint lit-dl writes
        return torch.load(file, map_location=map_location, weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        if _UNSAFE_GLOBAL.search(str(err)):
            raise _unsafe(path, err) from None
        raise not_torch from None
    except (IndexError, KeyError, ValueError, TypeError, struct.error):
        # the weights-only unpickler reading bytes that are no pickle: "pop from empty list", KeyError 101
        raise not_torch from None
    except (EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(f"{what} {str(path)!r} is truncated or corrupt ({type(err).__name__})") from None
    except RuntimeError as err:
        if "Invalid magic number" in str(err):  # a pickle, but not one that torch.save wrote
            raise not_torch from None
        # torch's zip reader: "PytorchStreamReader failed reading zip archive: failed finding central directory"
        if "PytorchStreamReader" in str(err) or "zip archive" in str(err):
            raise ConfigError(
                f"{what} {str(path)!r} is truncated or corrupt (not a complete zip archive)"
            ) from None
        raise


# st_mode file type -> what it is, for a path that is neither a file nor a directory
_FILE_TYPES = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def check_readable_file(file: str | os.PathLike[str], what: str) -> None:
    """Say what ``file`` is when it is not a regular file lit-dl can read: missing, a dangling or
    looping symbolic link, a directory, a named pipe (reading one waits for a writer forever) or a
    device, or not readable.

    Args:
        file: The path given.
        what: What the file is for, to start the message (``"checkpoint"``, ``"config"``).

    Raises:
        ConfigError: ``"<what> '<file>' is ..."``.
    """
    name = str(file)
    file = Path(file)
    try:
        mode = file.stat().st_mode
    except OSError as err:
        if file.is_symlink():
            if err.errno == errno.ELOOP:
                raise ConfigError(
                    f"{what} {name!r} is a symbolic link that loops (ELOOP); give the file itself"
                ) from None
            raise ConfigError(
                f"{what} {name!r} is a symbolic link to {os.readlink(file)!r}, which does not exist"
            ) from None
        if err.errno == errno.ENOENT:
            raise ConfigError(f"{what} {name!r} does not exist") from None
        raise ConfigError(f"{what} {name!r} cannot be read ({err.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ConfigError(f"{what} {name!r} is a directory; give the .ckpt file inside it")
    if not stat.S_ISREG(mode):
        kind = _FILE_TYPES.get(stat.S_IFMT(mode), "not a regular file")
        raise ConfigError(f"{what} {name!r} is {kind}, not a regular file; give the file itself")
    if not os.access(file, os.R_OK):
        raise ConfigError(f"{what} {name!r} cannot be read (permission denied)")


def _unsafe(path: str | os.PathLike[str], err: BaseException) -> UnsafeCheckpointError:
    unsafe = _UNSAFE_GLOBAL.search(str(err))
    name = (unsafe.group(1) or unsafe.group(2)) if unsafe else "an object"
    return UnsafeCheckpointError(
        f"checkpoint {str(path)!r} holds a pickled Python object ({name}) that safe loading "
        "(torch.load(weights_only=True)) refuses; lit-dl loads only tensors and plain values"
    )


@contextlib.contextmanager
def refuse_unsafe_pickles(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn torch's refusal of a pickled object in ``path`` (a load that Lightning does, say) into the
    one-line :class:`UnsafeCheckpointError`."""
    try:
        yield
    except pickle.UnpicklingError as err:
        raise _unsafe(path, err) from None


def refuse_non_finite_weights(checkpoint: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Raise :class:`~lit_dl.errors.CorruptCheckpointError` (one line) if a floating-point tensor of
    ``checkpoint["state_dict"]`` holds a NaN or an infinity: such weights evaluate to NaN losses and
    meaningless metrics (``test``, ``validate``, ``predict`` and ``export`` refuse them)."""
    bad = [
        name
        for name, value in (checkpoint.get("state_dict") or {}).items()
        if isinstance(value, torch.Tensor)
        and (value.is_floating_point() or value.is_complex())
        and not bool(torch.isfinite(value).all())
    ]
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CorruptCheckpointError(
            f"checkpoint {str(path)!r} holds weights that are not finite (NaN or inf in {shown}): the run "
            "diverged before it was written; use an earlier checkpoint of the run"
        )


def load_weights_file(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` of a checkpoint *or* a plain state dict (``init_from``).

    Raises:
        ConfigError: the file is missing, a directory, empty, truncated or not a torch file.
        UnsafeCheckpointError: the file holds pickled objects beyond tensors and plain containers.
    """
    return _read_torch_file(path, "checkpoint file", map_location, mmap=False)


def find_last_checkpoint(root: str | os.PathLike[str]) -> Path:
    """The newest ``last*.ckpt`` under ``<root>/version_*/checkpoints/`` (``root``: the logger's root,
    ``<default_root_dir>/lightning_logs``).

    Each lit_dl run writes into a new ``version_N`` folder, so Lightning's own ``ckpt_path="last"``
    (which looks in the new run's empty folder) would silently start from scratch. This looks at every
    earlier run of the same root and takes the most recently written ``last.ckpt``.

    Raises:
        ConfigError: no run under ``root`` has a ``last.ckpt``.
    """
    pattern = "version_*/checkpoints/last*.ckpt"
    candidates = [p for p in Path(root).glob(pattern) if p.is_file()]
    if not candidates:
        raise ConfigError(
            f"--ckpt_path last: no last.ckpt under {Path(root) / pattern}; keep last checkpoints with "
            "ModelCheckpoint(save_last=True) (the default bundle does) or pass the checkpoint's path"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime_ns)


_HPC_NAME = re.compile(r"hpc_ckpt_(\d+)\.ckpt")


def find_hpc_checkpoint(root: str | os.PathLike[str]) -> Path | None:
    """The ``hpc_ckpt_<n>.ckpt`` with the highest ``n`` in ``root`` (``default_root_dir``), or ``None``.

    Lightning's SLURM requeue handler writes these on the requeue signal (SIGUSR1), and ``fit`` under
    SLURM given no ``ckpt_path`` resumes from the highest one; lit_dl checks that file as it checks a
    ``--ckpt_path`` (safe loading, the model's arguments) before anything runs.
    """
    folder = Path(root)
    if not folder.is_dir():
        return None
    numbered = [
        (int(m.group(1)), entry) for entry in folder.iterdir() if (m := _HPC_NAME.fullmatch(entry.name))
    ]
    return max(numbered)[1] if numbered else None
