"""The run folder: one for all the run's loggers, taken atomically (runs started at the same moment in
one root never share one), and none left behind by a command that fails or is interrupted before its
first optimizer step (a resumed fit: before its first step after the checkpoint's)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import fsspec
import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from lit_dl._lightning import logger_version, set_logger_version

__all__ = ["RunFolderCleanup", "fix_logger_versions", "reserve_run_folder", "reserve_version_folder"]


def reserve_version_folder(logger: Any) -> Path | None:
    """Create the next ``version_N`` folder of a ``TensorBoardLogger`` or ``CSVLogger`` whose version
    is not set, and fix the logger's version to it; ``None`` for any other logger or a set version.

    Lightning's loggers pick ``N`` as one more than the highest folder they list and create the folder
    when they first write: runs started at the same moment in one root list the same folders and
    share one. Here ``N`` is taken by ``os.mkdir``, which either creates the folder or fails because it
    exists (atomic on a local disk and on NFS, no lock): a process that loses the race takes the next
    number. Local folders only; a remote ``save_dir`` (``s3://...``) keeps Lightning's choice.
    """
    if not isinstance(logger, (TensorBoardLogger, CSVLogger)) or logger_version(logger) is not None:
        return None
    if fsspec.utils.get_protocol(str(logger.root_dir)) != "file":
        return None
    root = Path(os.path.expanduser(os.path.expandvars(str(logger.root_dir))))
    root.mkdir(parents=True, exist_ok=True)
    version = _next_version(root)
    while True:
        folder = root / f"version_{version}"
        try:
            folder.mkdir()
        except FileExistsError:  # another run took it between the listing and the mkdir
            version = max(version + 1, _next_version(root))
            continue
        set_logger_version(logger, version)
        return folder


def _next_version(root: Path) -> int:
    """One more than the highest ``version_<int>`` folder in ``root`` (Lightning's loggers' rule), or 0."""
    versions = [
        int(entry.name[len("version_") :])
        for entry in root.iterdir()
        if entry.name.startswith("version_") and entry.name[len("version_") :].isdigit() and entry.is_dir()
    ]
    return max(versions, default=-1) + 1


def reserve_run_folder(loggers: list[Logger]) -> None:
    """Take the run's folder when the command starts (on global rank 0): the first ``TensorBoardLogger``
    or ``CSVLogger`` of each root without a version takes ``version_N`` with
    :func:`reserve_version_folder`, the others under that root get the same ``N``; then every logger's
    version is fixed (:func:`fix_logger_versions`).

    Under SLURM the version is the job's ID, as Lightning names its default logger's there: a
    requeued job (same ID) continues its run in the same folder.
    """
    job = SLURMEnvironment.job_id() if SLURMEnvironment.detect() else None
    taken: dict[str, int | str] = {}
    for logger in loggers:
        if not isinstance(logger, (TensorBoardLogger, CSVLogger)) or logger_version(logger) is not None:
            continue
        root = str(logger.root_dir)
        if job is not None:
            set_logger_version(logger, job)
        elif root in taken:
            set_logger_version(logger, taken[root])
        elif reserve_version_folder(logger) is not None:
            taken[root] = logger.version
    fix_logger_versions(loggers)


def fix_logger_versions(loggers: list[Logger]) -> None:
    """Fix the version of every ``TensorBoardLogger`` and ``CSVLogger`` now, before anything is written.

    Each picks the next free ``version_N`` under its root when first asked, and the first one asked
    (the config copy goes into its folder) creates that folder: a second logger under the same root
    asked later takes ``version_N+1``, one run in two folders. Asked together, before the run writes,
    loggers under one root agree on one ``version_N``. Reading ``version`` only lists the root.
    """
    for logger in loggers:
        if isinstance(logger, (TensorBoardLogger, CSVLogger)):
            logger.version  # noqa: B018  (the property fixes the version when first read)


class RunFolderCleanup:
    """Remembers what existed before a command and, after a failure, removes the run folder it created.

    Only global rank 0 touches the disk, and nothing here is a collective call (``trainer.log_dir``
    broadcasts, so reading it on one rank of a failing DDP run would hang or end in "Connection closed
    by peer"); the logger's own ``log_dir`` is what rank 0 wrote to.

    Without a logger (``trainer.logger: false``) the run folder is ``trainer.default_root_dir`` itself,
    where files of other runs may lie: only what this command added is removed (its ``config.yaml``,
    folders it created and left empty), never a file that was there before.

    Args:
        trainer: The command's Trainer, before the command runs.
        created: Folders on the way to ``default_root_dir`` that did not exist before (deepest first);
            removed when empty.
        resumed_step: The optimizer step of the checkpoint a fit resumes from (0: a fresh run): a
            failure with the step counter still there (or at 0, before the restore) trained nothing.
    """

    def __init__(self, trainer: L.Trainer, created: list[Path] | None = None, resumed_step: int = 0) -> None:
        self.trainer = trainer
        self.created = list(created or [])
        self.resumed_step = int(resumed_step)
        logger = trainer.logger
        self.has_logger = logger is not None
        root_dir = getattr(logger, "root_dir", None) if logger is not None else trainer.default_root_dir
        self.root = Path(root_dir) if root_dir else None
        # Listing the logger's root does not fix the run's version (reading log_dir now would).
        self.root_existed = self.root is not None and self.root.is_dir()
        self.before = set(self.root.iterdir()) if self.root_existed and self.root is not None else set()

    def after_failure(self) -> None:
        """Remove the new run folder if nothing was trained (no optimizer step), on rank 0 only."""
        trainer = self.trainer
        if (
            self.root is None
            or trainer.global_step not in (0, self.resumed_step)
            or not trainer.is_global_zero
        ):
            return
        if not self.has_logger:
            self._remove_added_files()
            return
        log_dir = getattr(trainer.logger, "log_dir", None)
        if log_dir:
            run_dir = Path(log_dir)
            if run_dir.parent == self.root and run_dir not in self.before:
                # Nothing was trained: the folder holds only a config copy and empty event files.
                shutil.rmtree(run_dir, ignore_errors=True)
        self._remove_empty_new_folders()

    def _remove_added_files(self) -> None:
        """No logger: the run folder is the root; remove the config copy and folders this command added."""
        assert self.root is not None
        for entry in set(self.root.iterdir()) - self.before if self.root.is_dir() else ():
            if entry.name == "config.yaml" and entry.is_file():
                entry.unlink()  # written by LightningCLI's SaveConfigCallback
            elif entry.is_dir() and not entry.is_symlink() and not any(entry.iterdir()):
                entry.rmdir()
        self._remove_empty_new_folders()

    def _remove_empty_new_folders(self) -> None:
        assert self.root is not None
        empty_candidates = ([] if self.root_existed else [self.root]) + self.created
        for folder in empty_candidates:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
