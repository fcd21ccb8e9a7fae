"""One sweep worker: check the sweep against the recipe, open (or join) the study, run trials until the
study holds the requested number. Each trial is an ordinary ``fit`` run in its own folder."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import lightning as L
import optuna
import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from optuna_integration import PyTorchLightningPruningCallback

from lit_dl.errors import ConfigError, NonFiniteError
from lit_dl.sweep.space import SweepSpec
from lit_dl.sweep.study import (
    counted_trials,
    embedded_storage_url,
    fail_stale_trials,
    open_storage,
    study_lock,
    write_meta,
)
from lit_dl.sweep.trial_metric import TrialMetric

__all__ = ["TRIAL_FILE", "Recipe", "Sweep", "checkpoint_monitor"]

TRIAL_FILE = "trial.yaml"
# Every trial: no progress bar or summary per trial, and no test run (a sweep chooses on validation data).
TRIAL_DEFAULTS = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@dataclass(frozen=True)
class Recipe:
    """How a sweep builds runs (the CLI passes lit_dl's LightningCLI).

    Args:
        parse: Parse ``fit`` arguments without building anything; returns the config.
        fit: Run ``lit-dl fit`` with these arguments and these extra callbacks (not part of the
            run's ``config.yaml``); returns the Trainer.
    """

    parse: Callable[[list[str]], Any]
    fit: Callable[[list[str], list[L.Callback]], L.Trainer]


def checkpoint_monitor(config: Any) -> tuple[str, str] | None:
    """``(monitor, "maximize"|"minimize")`` of the recipe's first checkpoint callback with a monitor."""
    trainer = config.get("trainer") or {}
    callbacks = trainer.get("callbacks") or []
    for callback in callbacks if isinstance(callbacks, list) else [callbacks]:
        if not isinstance(callback, (Namespace, dict)):
            continue
        class_path = callback.get("class_path")
        init_args = callback.get("init_args") or {}
        try:
            cls = _import(class_path)
        except (ImportError, AttributeError, ValueError):
            continue
        if isinstance(cls, type) and issubclass(cls, ModelCheckpoint) and init_args.get("monitor"):
            return init_args["monitor"], "maximize" if init_args.get("mode", "min") == "max" else "minimize"
    return None


def _import(class_path: Any) -> Any:
    module, _, name = str(class_path).rpartition(".")
    return getattr(__import__(module, fromlist=[name]), name)


class Sweep:
    """A sweep worker.

    Args:
        spec: The checked sweep file.
        fit_args: The runs' ``fit`` arguments (``--config`` files and overrides).
        sweep_dir: The sweep folder: trial run folders, the default SQLite storage, plots.
        recipe: How runs are parsed and trained.
        n_trials: Trials the study should hold in the end (all workers together).
        storage: A database URL; ``None``: ``<sweep_dir>/study.db``.
        study_name: Default: the sweep file's stem.
        worker_trials: The most trials this worker runs (``None``: until the study is full).
        heartbeat_interval: Seconds between a running trial's heartbeats; a trial silent for twice as
            long is failed and queued again.
        echo: Where progress lines go.
    """

    def __init__(
        self,
        spec: SweepSpec,
        fit_args: list[str],
        sweep_dir: Path,
        recipe: Recipe,
        n_trials: int | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        worker_trials: int | None = None,
        heartbeat_interval: int = 60,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.spec = spec
        self.fit_args = list(fit_args)
        self.sweep_dir = Path(sweep_dir)
        self.recipe = recipe
        self.n_trials = n_trials if n_trials is not None else spec.default_n_trials()
        if spec.sampler == "grid":  # more trials would revisit grid points
            self.n_trials = min(self.n_trials, math.prod(len(v) for v in spec.grid_space().values()))
        self.storage = storage
        self.study_name = study_name or Path(spec.path).stem
        self.worker_trials = worker_trials
        self.heartbeat_interval = heartbeat_interval
        self.echo = echo
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.metric, self.direction = self.check_recipe()

    # ---------------------------------------------------------------------------------------------
    def check_recipe(self) -> tuple[str, str]:
        """Parse the recipe with every file choice and both ends of every range, before anything is
        written; the metric and direction (default: the checkpoint's monitor and mode)."""
        spec = self.spec
        config = self.recipe.parse(self.fit_args)  # the recipe's own errors, as `lit-dl fit` gives them
        for values in spec.sample_values():
            try:
                self.recipe.parse(spec.trial_args(self.fit_args, values))
            except ConfigError as err:
                name, value = self._culprit(values)
                raise spec.error(f"parameter {name!r} = {value!r}: {err}") from None
        monitor = checkpoint_monitor(config)
        metric = spec.metric or (monitor[0] if monitor else None)
        if metric is None:
            raise spec.error(
                "no metric: the recipe has no checkpoint monitor; add 'metric: val/acc' (or another logged metric)"
            )
        direction = spec.direction
        if direction is None:
            if monitor is None or monitor[0] != metric:
                raise spec.error(f"metric {metric!r} needs 'direction: maximize' or 'direction: minimize'")
            direction = monitor[1]
        return metric, direction

    def _culprit(self, values: dict[str, Any]) -> tuple[str, Any]:
        """The parameter whose value alone makes the recipe fail to parse (the last one if none alone does)."""
        for param in self.spec.params:
            try:
                self.recipe.parse(self.spec.trial_args(self.fit_args, {param.name: values[param.name]}))
            except ConfigError:
                return param.name, values[param.name]
        last = self.spec.params[-1]
        return last.name, values[last.name]

    # ---------------------------------------------------------------------------------------------
    def open_study(self) -> optuna.Study:
        """Create the study, or join it: a study made with another metric or space is an error."""
        embedded = self.storage is None
        url = embedded_storage_url(self.sweep_dir) if embedded else str(self.storage)
        storage = open_storage(url, self.heartbeat_interval)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with study_lock(self.sweep_dir, embedded):
            existed = self.study_name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
            study = optuna.create_study(
                storage=storage,
                study_name=self.study_name,
                sampler=self.spec.make_sampler(),
                pruner=self.spec.make_pruner(),
                direction=cast(Literal["maximize", "minimize"], self.direction),  # one of DIRECTIONS
                load_if_exists=True,
            )
            attrs = {"metric": self.metric, "direction": self.direction, "space": self.spec.as_dict()}
            stored = study.user_attrs
            if existed and stored:
                for key, value in attrs.items():
                    if stored.get(key) != value:
                        raise ConfigError(
                            f"study {self.study_name!r} in {self._storage_name()} was made with {key} "
                            f"{stored.get(key)!r}, this sweep has {value!r}; give the same sweep file or "
                            "another --study_name / sweep folder"
                        )
            else:
                for key, value in attrs.items():
                    study.set_user_attr(key, value)
        self.created_study = not existed
        return study

    def _storage_name(self) -> str:
        return str(self.sweep_dir / "study.db") if self.storage is None else "--storage"

    def run(self) -> optuna.Study:
        """Run trials until the study holds ``n_trials`` (or this worker ran ``worker_trials``)."""
        # the outermost folder this command creates (sweeps/ of sweeps/lr_wd too): removed after bad input
        missing = [p for p in [self.sweep_dir, *self.sweep_dir.parents] if not p.exists()]
        created_dir = missing[-1] if missing else None
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        study = None
        try:
            study = self.open_study()
            write_meta(self.sweep_dir, self.study_name, self.storage)
            ran = 0
            while self.worker_trials is None or ran < self.worker_trials:
                with contextlib.ExitStack() as lock:
                    lock.enter_context(study_lock(self.sweep_dir, self.storage is None))
                    fail_stale_trials(study)  # a killed worker's trial: failed, queued again
                    if counted_trials(study) >= self.n_trials:
                        break
                    # the lock is released once the new trial exists (the objective's first line)
                    study.optimize(lambda trial: self.objective(trial, lock.close), n_trials=1, catch=())
                ran += 1
        except ConfigError:
            self._remove_after_bad_input(created_dir, study)
            raise
        return study

    def _remove_after_bad_input(self, created_dir: Path | None, study: optuna.Study | None) -> None:
        """Bad input found by a trial (a metric never logged, a value the recipe refuses): leave nothing."""
        if study is not None and self.storage is not None and getattr(self, "created_study", False):
            with contextlib.suppress(KeyError):
                optuna.delete_study(study_name=self.study_name, storage=self.storage)
        if created_dir is not None:
            shutil.rmtree(created_dir, ignore_errors=True)

    # ---------------------------------------------------------------------------------------------
    def trial_folder(self, number: int) -> Path:
        return self.sweep_dir / f"trial_{number:04d}"

    def objective(self, trial: optuna.Trial, release: Callable[[], None]) -> float:
        """One trial: a ``fit`` run with the trial's values; its value is the best metric of the run."""
        release()
        values = self.spec.suggest(trial)
        root = self.trial_folder(trial.number)
        args = [*TRIAL_DEFAULTS, "--test_after_fit", "false", *self.spec.trial_args(self.fit_args, values)]
        args += ["--trainer.default_root_dir", str(root)]
        trial.set_user_attr("worker", self.worker)
        trial.set_user_attr("run_folder", root.name)
        watch = TrialMetric(self.metric, self.direction)
        callbacks: list[L.Callback] = [watch]
        if self.spec.pruner != "none":
            callbacks.append(PyTorchLightningPruningCallback(trial, monitor=self.metric))
        self.echo(f"trial {trial.number}: {_describe(values)}")
        try:
            trainer = self.recipe.fit(args, callbacks)
        except optuna.TrialPruned:
            self._record(trial, watch, values, "pruned")
            self.echo(f"trial {trial.number}: pruned after {len(watch.values)} validations")
            raise
        except NonFiniteError as err:
            trial.set_user_attr("diverged", " ".join(str(err).split()))
            self._record(trial, watch, values, "diverged")
            self.echo(f"trial {trial.number}: diverged ({err})")
            return math.nan
        except ConfigError:
            shutil.rmtree(root, ignore_errors=True)
            raise
        best = watch.best
        # A run whose weights became NaN/inf without NonFiniteGuard noticing (it checks every N steps)
        non_finite = sorted(k for k, v in trainer.callback_metrics.items() if not torch.isfinite(v).all())
        if math.isnan(best) or non_finite:
            reason = (
                f"non-finite {', '.join(non_finite)}" if non_finite else f"{self.metric} was never finite"
            )
            trial.set_user_attr("diverged", reason)
            self._record(trial, watch, values, "diverged")
            self.echo(f"trial {trial.number}: diverged ({reason})")
            return math.nan
        self._record(trial, watch, values, "complete")
        self.echo(f"trial {trial.number}: {self.metric} {best:.4f}")
        return best

    def _record(self, trial: optuna.Trial, watch: TrialMetric, values: dict[str, Any], state: str) -> None:
        """The trial's outcome in its run folder (``trial.yaml``) and in the study (``run_folder``)."""
        if watch.run_dir is None:
            return
        trial.set_user_attr("run_folder", os.path.relpath(watch.run_dir.resolve(), self.sweep_dir.resolve()))
        trial.set_user_attr("values", watch.values)
        record = {
            "study": self.study_name,
            "trial": trial.number,
            "state": state,
            "metric": self.metric,
            "direction": self.direction,
            "best": None if math.isnan(watch.best) else watch.best,
            "values": watch.values,
            "params": values,
            "worker": self.worker,
        }
        if state == "pruned":
            record["pruned_after_validations"] = len(watch.values)
        watch.run_dir.mkdir(parents=True, exist_ok=True)
        (watch.run_dir / TRIAL_FILE).write_text(yaml.safe_dump(record, sort_keys=False))


def _describe(values: dict[str, Any]) -> str:
    return ", ".join(f"{name.rsplit('.', 1)[-1]}={value!r}" for name, value in values.items())
