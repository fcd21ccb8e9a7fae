"""``lit-dl sweep``: a hyperparameter search on Optuna whose trials are ordinary ``lit-dl fit`` runs.

    lit-dl sweep --config configs/digits_mlp.yaml --sweep configs/sweeps/lr_wd.yaml [--n_trials 20]
    lit-dl sweep --show sweeps/lr_wd

Every argument that is not the sweep's own goes to each trial's ``fit``. The sweep logic lives in
:mod:`lit_dl.sweep`; this module parses the command line and gives it lit_dl's LightningCLI.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, NoReturn

import lightning as L

from lit_dl.cli.lightning_cli import LitDLCLI
from lit_dl.errors import ConfigError

__all__ = ["SWEEP_HINT", "build_parser", "main", "show", "sweep_recipe"]

SWEEP_HINT = "lit-dl sweep needs Optuna: pip install 'lit-dl[sweep]'"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"lit-dl sweep: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lit-dl sweep",
        allow_abbrev=False,
        description="Search hyperparameters with Optuna; each trial is a `lit-dl fit` run with the "
        "trial's values. Arguments other than these go to every trial's fit (--config ..., --trainer.X ...).",
    )
    parser.add_argument(
        "--sweep", help="The sweep file (configs/sweeps/*.yaml): params, metric, sampler, pruner."
    )
    parser.add_argument(
        "--show",
        metavar="FOLDER",
        help="Print the table of a sweep folder's trials and draw its plots; run nothing.",
    )
    parser.add_argument(
        "--n_trials",
        type=int,
        help="Trials the study holds in the end, all workers together "
        "(default: the sweep file's n_trials, else 20, or the grid's size).",
    )
    parser.add_argument(
        "--worker_trials", type=int, help="The most trials this process runs (SLURM array tasks)."
    )
    parser.add_argument("--sweep_dir", help="The sweep folder (default: sweeps/<sweep file name>).")
    parser.add_argument(
        "--storage",
        help="An Optuna database URL (postgresql://user@host/db) shared by many "
        "workers (default: <sweep_dir>/study.db, SQLite).",
    )
    parser.add_argument("--study_name", help="Default: the sweep file's name.")
    parser.add_argument("--sampler", help="Replace the sweep file's sampler: tpe, random, grid.")
    parser.add_argument("--pruner", help="Replace the sweep file's pruner: median, none.")
    parser.add_argument("--metric", help="Replace the sweep file's metric (a logged name such as val/loss).")
    parser.add_argument("--direction", help="maximize or minimize (default: the checkpoint monitor's mode).")
    parser.add_argument("--seed", type=int, help="The sampler's seed.")
    parser.add_argument(
        "--heartbeat_interval",
        type=int,
        default=60,
        help="Seconds between a running trial's "
        "heartbeats; a trial silent for twice as long (a killed worker) is failed and queued again.",
    )
    return parser


class _ParseOnlyCLI(LitDLCLI):
    """The ``fit`` parser alone: the config is parsed and validated, nothing is built."""

    def instantiate_classes(self) -> None:
        pass


def _parse(args: list[str]) -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return _ParseOnlyCLI(args=args, run=False, save_config_callback=None).config


def _fit(args: list[str], callbacks: list[L.Callback]) -> L.Trainer:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        return LitDLCLI(args=["fit", *args], trainer_defaults={"callbacks": callbacks}).trainer


def sweep_recipe() -> Any:
    """The :class:`lit_dl.sweep.Recipe` of ``lit-dl fit``: parse with its parser, train with its CLI."""
    from lit_dl.sweep import Recipe

    return Recipe(parse=_parse, fit=_fit)


def main(argv: list[str]) -> Any:
    """``lit-dl sweep ...``: run (or join) a sweep, or ``--show`` one; returns the study."""
    try:
        import optuna  # noqa: F401
        import optuna_integration  # noqa: F401
    except ImportError:
        raise ConfigError(SWEEP_HINT) from None
    options, fit_args = build_parser().parse_known_args(argv)
    for name in ("n_trials", "worker_trials", "heartbeat_interval"):
        value = getattr(options, name)
        if value is not None and value < 1:
            raise ConfigError(f"lit-dl sweep: --{name} must be 1 or more, got {value}")
    if options.show:
        return show(Path(options.show), options.storage, options.study_name)
    if not options.sweep:
        raise ConfigError("lit-dl sweep needs --sweep <sweep file> (or --show <sweep folder>)")
    from lit_dl.sweep import Sweep, load_sweep

    overrides = {k: getattr(options, k) for k in ("sampler", "pruner", "metric", "direction", "seed")}
    spec = load_sweep(options.sweep, overrides)
    sweep_dir = Path(options.sweep_dir or Path("sweeps") / Path(options.sweep).stem)
    sweep = Sweep(
        spec,
        fit_args,
        sweep_dir,
        sweep_recipe(),
        n_trials=options.n_trials,
        storage=options.storage,
        study_name=options.study_name,
        worker_trials=options.worker_trials,
        heartbeat_interval=options.heartbeat_interval,
    )
    study = sweep.run()
    _report(study, sweep_dir)
    return study


def show(sweep_dir: Path, storage: str | None = None, study_name: str | None = None) -> Any:
    """``lit-dl sweep --show <folder>``: the table and plots of a sweep, from its storage."""
    import optuna

    from lit_dl.sweep import embedded_storage_url, read_meta

    meta = read_meta(sweep_dir) if storage is None or study_name is None else {}
    name = study_name or meta.get("study_name")
    url = storage or meta.get("storage") or embedded_storage_url(sweep_dir)
    if "***" in url:
        raise ConfigError(f"the sweep in {str(sweep_dir)!r} uses a database with a password: give --storage")
    try:
        study = optuna.load_study(study_name=name, storage=url)
    except KeyError:
        raise ConfigError(f"no study {name!r} in {url!r}") from None
    _report(study, sweep_dir)
    return study


def _report(study: Any, sweep_dir: Path) -> None:
    from lit_dl.sweep import best_config, format_table, write_plots

    print(format_table(study))
    config = best_config(study, sweep_dir)
    if config is not None:
        print(f"best trial {study.best_trial.number}: {config}  (rerun: lit-dl fit --config {config})")
    sweep_dir.mkdir(parents=True, exist_ok=True)
    written, skipped = write_plots(study, sweep_dir)
    for line in skipped:
        print(line)
    if written:
        print("plots: " + ", ".join(str(p) for p in written))
