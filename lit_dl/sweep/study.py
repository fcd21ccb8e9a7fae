"""Where a sweep's study lives: the storage (a SQLite file in the sweep folder, or any database URL),
the study's own record of its metric and space, and the lock that keeps workers from overshooting."""

from __future__ import annotations

import contextlib
import fcntl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
import yaml
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from lit_dl.errors import ConfigError

__all__ = [
    "DB_NAME",
    "META_NAME",
    "counted_trials",
    "embedded_storage_url",
    "fail_stale_trials",
    "open_storage",
    "read_meta",
    "study_lock",
    "write_meta",
]

DB_NAME = "study.db"
META_NAME = "sweep.yaml"
# A trial counts towards --n_trials unless it failed for a reason that another try may not have:
# a killed worker's trial is retried (RetryHeartbeatStaleTrialCallback), a bug stops the sweep.
_COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


def embedded_storage_url(sweep_dir: Path) -> str:
    """The default storage: a SQLite file in the sweep folder (no server)."""
    return f"sqlite:///{(sweep_dir / DB_NAME).resolve()}"


def open_storage(url: str, heartbeat_interval: int, max_retry: int = 2) -> RDBStorage:
    """An RDB storage with heartbeats: a trial whose worker stops beating for ``2 × heartbeat_interval``
    seconds is marked failed and queued again with its parameters (at most ``max_retry`` times).

    Raises:
        ConfigError: the URL is not one SQLAlchemy can open, or the database refuses the connection.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Workers on one file wait for each other's writes instead of failing at once.
        engine_kwargs = {"connect_args": {"timeout": 60}}
    last: Exception | None = None
    for attempt in range(3):  # workers started at once race to create the tables
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=2 * heartbeat_interval,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
                )
        except (sqlalchemy.exc.ArgumentError, ImportError, ValueError) as err:
            raise ConfigError(
                f"--storage {_masked(url)!r} is not a database URL Optuna can open: {err}"
            ) from None
        except sqlalchemy.exc.DBAPIError as err:  # refused, locked, or a table another worker just made
            last = err
            time.sleep(0.5 * (attempt + 1))
    message = str(getattr(last, "orig", last)).strip().splitlines()[0] if last else ""
    raise ConfigError(f"--storage {_masked(url)!r}: cannot open the database: {message}")


def _masked(url: str) -> str:
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def counted_trials(study: optuna.Study) -> int:
    """Trials that count towards the requested number: finished, running or queued, and diverged ones."""
    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state in _COUNTED or (t.state == TrialState.FAIL and t.user_attrs.get("diverged"))
    )


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark the running trials whose worker stopped beating as failed (and queue them again)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


@contextlib.contextmanager
def study_lock(sweep_dir: Path, embedded: bool) -> Iterator[None]:
    """Held from counting the trials to the new trial's creation, so that workers on one machine never
    start more than the requested number. A database shared by many machines has no such lock: workers
    that start their last trials at the same instant may run one extra each."""
    if not embedded:
        yield
        return
    with open(sweep_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_meta(sweep_dir: Path, study_name: str, storage: str | None) -> None:
    """``sweep.yaml``: what ``lit-dl sweep --show <folder>`` needs to find the study (no password)."""
    meta = {"study_name": study_name, "storage": None if storage is None else _masked(storage)}
    tmp = sweep_dir / f".{META_NAME}.tmp"
    tmp.write_text(yaml.safe_dump(meta, sort_keys=False))
    tmp.replace(sweep_dir / META_NAME)


def read_meta(sweep_dir: Path) -> dict[str, Any]:
    """The ``sweep.yaml`` of a sweep folder.

    Raises:
        ConfigError: the folder holds no sweep.
    """
    path = sweep_dir / META_NAME
    if not path.is_file():
        raise ConfigError(
            f"{str(sweep_dir)!r} is not a sweep folder (no {META_NAME}); give the folder a "
            "`lit-dl sweep` wrote, or --storage and --study_name"
        )
    return yaml.safe_load(path.read_text()) or {}
