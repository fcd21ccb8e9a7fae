"""Hyperparameter sweeps on Optuna: a search space over config keys, trials that are ordinary runs,
a study shared through a database (``lit-dl sweep``)."""

from lit_dl.sweep.report import best_config, format_table, trial_best, write_plots
from lit_dl.sweep.runner import TRIAL_FILE, Recipe, Sweep, checkpoint_monitor
from lit_dl.sweep.space import Param, SweepSpec, format_value, load_sweep, parse_sweep
from lit_dl.sweep.study import counted_trials, embedded_storage_url, open_storage, read_meta
from lit_dl.sweep.trial_metric import TrialMetric

__all__ = [
    "TRIAL_FILE",
    "Param",
    "Recipe",
    "Sweep",
    "SweepSpec",
    "TrialMetric",
    "best_config",
    "checkpoint_monitor",
    "counted_trials",
    "embedded_storage_url",
    "format_table",
    "format_value",
    "load_sweep",
    "open_storage",
    "parse_sweep",
    "read_meta",
    "trial_best",
    "write_plots",
]
