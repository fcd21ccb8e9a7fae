"""Checkpoint I/O whose files are never half-written, need only their own disk, and are checked on load.

:class:`AtomicCheckpointIO` wraps the Trainer's checkpoint I/O plugin, so that every file written
through the strategy is atomic: ``ModelCheckpoint``'s, ``Trainer.save_checkpoint``'s, Lightning's
``OnExceptionCheckpoint`` and SLURM ``hpc_ckpt`` files. :func:`install_atomic_io` puts it into a
strategy's chain of plugins (``lit-dl`` and :class:`~lit_dl.callbacks.AtomicCheckpoint` do).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import uuid
from typing import Any

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.plugins.io import AsyncCheckpointIO

from lit_dl.checkpointing.background_io import BackgroundCheckpointIO
from lit_dl.checkpointing.integrity import verify_checksums
from lit_dl.errors import ConfigError

__all__ = ["AtomicCheckpointIO", "install_atomic_io", "remove_stale_partials"]

# A temporary file is named `.partial-<host>-<pid>-<random>.tmp`: never `last*.ckpt` (Lightning's
# ckpt_path="last" and lit_dl's find_last_checkpoint list those), and its writer can be told dead.
_PARTIAL_PREFIX = ".partial-"
_PARTIAL_SUFFIX = ".tmp"
_HOST = socket.gethostname().replace("-", "_")

# What a full, over-quota or read-only disk raises; the run, not lit_dl, has to change.
_DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class AtomicCheckpointIO(CheckpointIO):
    """Writes each checkpoint through ``checkpoint_io`` so that a file under its final name is complete.

    - **Local files, torch's format** (``checkpoint_io`` is Lightning's default ``TorchCheckpointIO``
      or a subclass that keeps its ``save_checkpoint``): the file is written under a temporary name in
      the target's own folder and renamed into place (``os.replace``, atomic on POSIX and Windows). A
      process killed during the write leaves the previous file intact and a ``.partial-*.tmp`` file,
      removed by the next write into (or load from) that folder once its writer is gone. Nothing goes
      through ``$TMPDIR``: the only disk a write needs is the target's. (Lightning's own write goes
      through a temporary file in ``$TMPDIR`` and moves it, a copy when ``$TMPDIR`` is another disk.)
    - **fsspec URLs** (``s3://``, ``gs://``, ``memory://``...) and **every other plugin**: the plugin
      writes the file itself, under its final name: Lightning's default uses the filesystem's own
      transaction (an object store's upload appears whole or not at all); a user's plugin keeps its
      own storage and semantics.

    A full, over-quota or read-only disk stops the write with one line naming the folder and what to
    do (:class:`~lit_dl.errors.ConfigError`), and the temporary file is removed.

    ``load_checkpoint`` first checks the file's content against the CRC-32 checksums that
    ``torch.save`` writes into every record (:func:`~lit_dl.checkpointing.integrity.verify_checksums`;
    files the plugin reads its own way are not checked), then lets the plugin load it.

    Args:
        checkpoint_io: The plugin that does the work (default: Lightning's ``TorchCheckpointIO``).
        fsync: Flush each file and its folder to the disk around the rename, so that a power cut, not
            only a killed process, leaves either the old or the new file. Off by default: a killed
            process needs no flush (the kernel keeps what was written), ext4's default mount flushes a
            file renamed over another by itself, and a flush costs 10-30 ms a file on this project's
            2-core test machine, more than writing a small recipe's checkpoint.
    """

    def __init__(self, checkpoint_io: CheckpointIO | None = None, fsync: bool = False) -> None:
        self.checkpoint_io = checkpoint_io if checkpoint_io is not None else TorchCheckpointIO()
        self.fsync = bool(fsync)
        self._cleaned: set[str] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is None and _writes_torch_files(self.checkpoint_io) and _is_local(path):
            self._write_local(checkpoint, os.fspath(path))
        elif storage_options is None:
            self.checkpoint_io.save_checkpoint(checkpoint, path)
        else:
            self.checkpoint_io.save_checkpoint(checkpoint, path, storage_options=storage_options)

    def load_checkpoint(
        self, path: Any, map_location: Any | None = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if _reads_torch_files(self.checkpoint_io):
            verify_checksums(path)
            if _is_local(path):
                self._clean(os.path.dirname(os.path.abspath(os.fspath(path))))
        kwargs: dict[str, Any] = {"weights_only": weights_only}
        if map_location is not None:  # else the plugin's own default (Lightning's keeps each tensor's device)
            kwargs["map_location"] = map_location
        return self.checkpoint_io.load_checkpoint(path, **kwargs)

    def remove_checkpoint(self, path: Any) -> None:
        self.checkpoint_io.remove_checkpoint(path)

    def teardown(self) -> None:
        self.checkpoint_io.teardown()

    def _write_local(self, checkpoint: dict[str, Any], path: str) -> None:
        folder = os.path.dirname(os.path.abspath(path))
        temporary = os.path.join(
            folder, f"{_PARTIAL_PREFIX}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:12]}{_PARTIAL_SUFFIX}"
        )
        try:
            os.makedirs(folder, exist_ok=True)
            self._clean(folder)
            with open(temporary, "xb") as f:  # a file object: a full disk raises OSError, not RuntimeError
                torch.save(checkpoint, f)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(temporary, path)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.remove(temporary)
            disk = _disk_error_in(err)
            if disk is not None:
                raise _disk_error(disk, path, folder) from None
            raise
        if self.fsync:
            with contextlib.suppress(OSError):  # not every system can open a folder (Windows)
                _fsync_folder(folder)

    def _clean(self, folder: str) -> None:
        """Remove the temporary files that dead writers left in ``folder`` (once per folder)."""
        if folder not in self._cleaned:
            self._cleaned.add(folder)
            remove_stale_partials(folder)


def remove_stale_partials(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the ``.partial-*.tmp`` files in ``folder`` whose writer (a process on this host) is gone;
    return their names. Files of live processes and of other hosts are kept."""
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(_PARTIAL_PREFIX) and name.endswith(_PARTIAL_SUFFIX)):
            continue
        parts = name[len(_PARTIAL_PREFIX) : -len(_PARTIAL_SUFFIX)].split("-")
        if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def install_atomic_io(strategy: Any) -> AtomicCheckpointIO:
    """Make ``strategy``'s checkpoint I/O atomic (see :class:`AtomicCheckpointIO`); idempotent.

    The wrapper goes right above the plugin that writes the bytes, beneath the plugins that only move
    the write to a thread (Lightning's ``AsyncCheckpointIO``, :class:`BackgroundCheckpointIO`), so that
    the rename follows the write in that thread. Returns the wrapper.
    """
    found = find_checkpoint_io(strategy.checkpoint_io, AtomicCheckpointIO)
    if found is not None:
        return found
    wrapped, atomic = _wrap(strategy.checkpoint_io)
    strategy.checkpoint_io = wrapped
    return atomic


def find_checkpoint_io(io: Any, kind: type) -> Any:
    """The first plugin of type ``kind`` in the chain that starts at ``io``, or ``None``."""
    while io is not None:
        if isinstance(io, kind):
            return io
        io = _inner(io)
    return None


def _inner(io: Any) -> Any:
    if isinstance(io, BackgroundCheckpointIO):
        return io.inner
    if isinstance(io, (AtomicCheckpointIO, AsyncCheckpointIO)):
        return io.checkpoint_io  # a public property of Lightning's wrapping plugins
    return None


def _wrap(io: CheckpointIO) -> tuple[CheckpointIO, AtomicCheckpointIO]:
    if isinstance(io, BackgroundCheckpointIO):
        io.inner, atomic = _wrap(io.inner)
        return io, atomic
    if type(io) is AsyncCheckpointIO:
        # Its setter keeps a base plugin once one is set: a new AsyncCheckpointIO over the wrapped base.
        # the strategy's checkpoint_io getter has given a wrapper without a base plugin its default one
        assert io.checkpoint_io is not None
        inner, atomic = _wrap(io.checkpoint_io)
        return AsyncCheckpointIO(inner), atomic
    atomic = AtomicCheckpointIO(io)
    return atomic, atomic


def _writes_torch_files(io: CheckpointIO) -> bool:
    """Whether ``io`` writes with Lightning's ``TorchCheckpointIO.save_checkpoint`` (its own or inherited)."""
    return isinstance(io, TorchCheckpointIO) and type(io).save_checkpoint is TorchCheckpointIO.save_checkpoint


def _reads_torch_files(io: CheckpointIO) -> bool:
    return isinstance(io, TorchCheckpointIO) and type(io).load_checkpoint is TorchCheckpointIO.load_checkpoint


def _is_local(path: Any) -> bool:
    return isinstance(fsspec.core.url_to_fs(os.fspath(path))[0], LocalFileSystem)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_folder(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_error_in(err: BaseException) -> OSError | None:
    """The full or read-only disk's ``OSError`` behind ``err`` (torch's zip writer raises a RuntimeError
    of its own while it handles the OSError of the write), or ``None``."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError) and current.errno in _DISK_ERRORS:
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _disk_error(err: OSError, path: str, folder: str) -> ConfigError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            return ConfigError(
                f"cannot write checkpoint {path!r}: {err.strerror} ({free / 2**20:.1f} MiB free in {folder}); "
                "free space on that disk or write the run elsewhere (--trainer.default_root_dir, or the "
                "checkpoint callback's dirpath)"
            )
    return ConfigError(
        f"cannot write checkpoint {path!r}: {err.strerror} in {folder}; make that folder writable or write "
        "the run elsewhere (--trainer.default_root_dir, or the checkpoint callback's dirpath)"
    )
