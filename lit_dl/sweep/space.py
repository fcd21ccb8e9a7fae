"""The sweep file: which config keys a sweep varies and how, the metric, the sampler and the pruner.

A sweep file is YAML next to the recipes (``configs/sweeps/``)::

    metric: val/acc            # optional: default, the recipe checkpoint's monitor (and its mode)
    direction: maximize        # optional with the checkpoint's monitor; maximize | minimize
    sampler: tpe               # tpe (default) | random | grid, or {tpe: {n_startup_trials: 5}}
    pruner: median             # median (default) | none, or {median: {n_warmup_steps: 2}}
    n_trials: 20               # optional: default 20, or the size of the grid
    seed: 0                    # optional: the sampler's seed
    params:
      model.init_args.optimizer.init_args.lr: {float: [1.0e-4, 1.0e-1], log: true, grid: 5}
      data.init_args.batch_size: {int: [16, 256], log: true}
      model.init_args.activation: [relu, gelu]
      optimizer: [lit_dl://optimizer/sgd.yaml, lit_dl://optimizer/adamw.yaml]

A parameter is any config key, set as ``--<key> <value>`` after the recipe's files; a list whose
choices are all YAML files is a choice of config files instead (its name is free), each given as one
more ``--config`` right after the run's own. ``grid: N`` gives a float range N points (log-spaced with
``log: true``) for the grid sampler; an int range's grid is every ``step``-th integer of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import yaml

from lit_dl.errors import ConfigError

__all__ = ["DIRECTIONS", "PRUNERS", "SAMPLERS", "Param", "SweepSpec", "load_sweep", "parse_sweep"]

SAMPLERS = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler, "grid": None}
PRUNERS = {"median": optuna.pruners.MedianPruner, "none": optuna.pruners.NopPruner}
DIRECTIONS = ("maximize", "minimize")
_TOP_KEYS = ("params", "metric", "direction", "sampler", "pruner", "n_trials", "seed")
_RANGE_OPTIONS = {"float": ("log", "step", "grid"), "int": ("log", "step")}
_CONFIG_SUFFIXES = (".yaml", ".yml")
DEFAULT_N_TRIALS = 20


@dataclass(frozen=True)
class Param:
    """One searched parameter: a ``float``/``int`` range or a list of ``choices``.

    ``files`` is true for a choice of config files (each choice is given as ``--config <file>``).
    """

    name: str
    kind: str  # "float" | "int" | "choices"
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    grid: int | None = None
    choices: tuple[Any, ...] = ()
    files: bool = False
    base_dir: Path | None = None

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` of a ``float`` or ``int`` parameter (both set: the sweep file was checked)."""
        assert self.low is not None and self.high is not None, f"{self.name} is a {self.kind} parameter"
        return self.low, self.high

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this parameter (a choice as written in the sweep file)."""
        if self.kind == "float":
            low, high = self.bounds()
            return trial.suggest_float(self.name, low, high, log=self.log, step=self.step)
        if self.kind == "int":
            low, high = self.bounds()
            return trial.suggest_int(self.name, int(low), int(high), log=self.log, step=int(self.step or 1))
        encoded = [_encode_choice(c) for c in self.choices]
        return _decode_choice(trial.suggest_categorical(self.name, encoded))

    def grid_values(self) -> list[Any]:
        """Every value the grid sampler visits (as Optuna stores them: choices encoded)."""
        if self.kind == "choices":
            return [_encode_choice(c) for c in self.choices]
        low, high = self.bounds()
        if self.kind == "int":
            return list(range(int(low), int(high) + 1, int(self.step or 1)))
        if self.step is not None:
            count = math.floor((high - low) / self.step + 1e-9) + 1
            return [low + i * self.step for i in range(count)]
        assert self.grid is not None, f"{self.name}: a float grid without step has grid points"
        space = np.geomspace if self.log else np.linspace
        return [float(v) for v in space(low, high, self.grid)]

    def config_file(self, choice: str) -> str:
        """The ``--config`` value of a file choice: ``lit_dl://`` names as given, paths next to the sweep file."""
        if choice.startswith("lit_dl://") or Path(choice).is_absolute() or self.base_dir is None:
            return choice
        return str(self.base_dir / choice)


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep file."""

    path: str
    params: tuple[Param, ...]
    metric: str | None = None
    direction: str | None = None
    sampler: str = "tpe"
    sampler_args: dict[str, Any] = field(default_factory=dict)
    pruner: str = "median"
    pruner_args: dict[str, Any] = field(default_factory=dict)
    n_trials: int | None = None
    seed: int | None = None

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"sweep file {self.path!r}: {message}")

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's value of every parameter, file choices first (in the order of the file)."""
        return {p.name: p.suggest(trial) for p in self.params}

    def trial_args(self, fit_args: list[str], values: dict[str, Any]) -> list[str]:
        """``fit_args`` with the chosen config files after the run's last ``--config`` and ``--key value``
        for every other parameter at the end (so they win over every file)."""
        files: list[str] = []
        overrides: list[str] = []
        for param in self.params:
            value = values[param.name]
            if param.files:
                files += ["--config", param.config_file(value)]
            else:
                overrides += [f"--{param.name}", format_value(value)]
        last = max((i for i, a in enumerate(fit_args) if a in ("--config", "-c")), default=None)
        if last is None:
            last_eq = [i for i, a in enumerate(fit_args) if a.startswith(("--config=", "-c="))]
            insert_at = last_eq[-1] + 1 if last_eq else 0
        else:
            insert_at = last + 2
        return [*fit_args[:insert_at], *files, *fit_args[insert_at:], *overrides]

    def sample_values(self) -> list[dict[str, Any]]:
        """Values to check the keys with before a trial runs: every file choice once, ranges at both ends."""
        first = {p.name: (p.choices[0] if p.kind == "choices" else p.low) for p in self.params}
        samples = [first]
        for param in self.params:
            others = param.choices[1:] if param.kind == "choices" else (param.high,)
            samples += [{**first, param.name: value} for value in others]
        return samples

    def grid_space(self) -> dict[str, list[Any]]:
        return {p.name: p.grid_values() for p in self.params}

    def default_n_trials(self) -> int:
        if self.n_trials is not None:
            return self.n_trials
        if self.sampler == "grid":
            return math.prod(len(v) for v in self.grid_space().values())
        return DEFAULT_N_TRIALS

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        if self.sampler == "grid":
            return optuna.samplers.GridSampler(self.grid_space(), seed=self.seed)
        sampler = SAMPLERS[self.sampler]
        assert sampler is not None  # only "grid" has none, handled above
        return _construct(self, "sampler", sampler, {"seed": self.seed, **self.sampler_args})

    def make_pruner(self) -> optuna.pruners.BasePruner:
        return _construct(self, "pruner", PRUNERS[self.pruner], self.pruner_args)

    def as_dict(self) -> dict[str, Any]:
        """The search space as plain values (stored with the study, compared on resume)."""
        return {
            p.name: {"kind": p.kind, "low": p.low, "high": p.high, "log": p.log, "step": p.step}
            if p.kind != "choices"
            else {"kind": "choices", "choices": [_encode_choice(c) for c in p.choices]}
            for p in self.params
        }


def _construct(spec: SweepSpec, what: str, cls: type, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise spec.error(f"{what} {getattr(spec, what)!r}: {err}") from None
    except ValueError as err:
        raise spec.error(f"{what} {getattr(spec, what)!r}: {err}") from None


def format_value(value: Any) -> str:
    """A value as a command-line string jsonargparse reads back to the same value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        text = repr(value)
        # YAML 1.1 (PyYAML) reads 1e-05 as a string: give the mantissa a dot
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _encode_choice(choice: Any) -> Any:
    """Optuna stores None, bool, int, float and str choices; lists and mappings go as JSON text."""
    if choice is None or isinstance(choice, (bool, int, float, str)):
        return choice
    return "json:" + json.dumps(choice)


def _decode_choice(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value.removeprefix("json:"))
    return value


def load_sweep(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Read and check a sweep file; ``overrides`` (from the command line) replace its top-level keys.

    Raises:
        ConfigError: naming the file, the key and what is allowed.
    """
    path = str(path)
    file = Path(path)

    def error(message: str) -> ConfigError:
        return ConfigError(f"sweep file {path!r}: {message}")

    if not file.is_file():
        raise ConfigError(f"sweep file {path!r} does not exist" + (" (a directory)" if file.is_dir() else ""))
    try:
        content = yaml.safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise error(f"not valid YAML{where}") from None
    return parse_sweep(content, path, file.parent, overrides)


def parse_sweep(
    content: Any, path: str, base_dir: Path, overrides: dict[str, Any] | None = None
) -> SweepSpec:
    """Check a sweep given as data (what a sweep file holds); ``path`` names it in error messages and
    ``base_dir`` is where relative config-file choices are found.

    Raises:
        ConfigError: naming ``path``, the key and what is allowed.
    """

    def error(message: str) -> ConfigError:
        return ConfigError(f"sweep file {path!r}: {message}")

    if not isinstance(content, dict):
        raise error(f"must hold a mapping with 'params:', got {type(content).__name__}")
    content = {**content, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    unknown = sorted(set(content) - set(_TOP_KEYS))
    if unknown:
        raise error(f"unknown key {unknown[0]!r}; allowed: {', '.join(_TOP_KEYS)}")
    params_raw = content.get("params")
    if not isinstance(params_raw, dict) or not params_raw:
        raise error(
            "'params' must map config keys to ranges or choices, e.g. "
            "'model.init_args.optimizer.init_args.lr: {float: [1.0e-4, 1.0e-1], log: true}'"
        )
    sampler, sampler_args = _named(error, "sampler", content.get("sampler", "tpe"), SAMPLERS)
    pruner, pruner_args = _named(error, "pruner", content.get("pruner", "median"), PRUNERS)
    if sampler == "grid" and sampler_args:
        raise error(f"the grid sampler takes no arguments, got {sorted(sampler_args)}")
    params = tuple(_param(error, str(name), raw, base_dir, sampler) for name, raw in params_raw.items())
    params = tuple(sorted(params, key=lambda p: not p.files))  # file choices first: key overrides win
    metric = content.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise error(f"metric must be a logged metric's name such as 'val/acc', got {metric!r}")
    direction = content.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise error(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    n_trials = content.get("n_trials")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise error(f"n_trials must be a positive integer, got {n_trials!r}")
    seed = content.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise error(f"seed must be an integer, got {seed!r}")
    return SweepSpec(
        path, params, metric, direction, sampler, sampler_args, pruner, pruner_args, n_trials, seed
    )


def _named(error, what: str, raw: Any, table: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``name`` or ``{name: {kwargs}}``, name one of ``table``."""
    kwargs: Any = {}
    if isinstance(raw, dict) and len(raw) == 1:
        raw, kwargs = next(iter(raw.items()))
        kwargs = kwargs or {}
    if not isinstance(raw, str) or raw not in table or not isinstance(kwargs, dict):
        raise error(f"{what} must be one of {', '.join(table)} (or {{name: {{arguments}}}}), got {raw!r}")
    return raw, kwargs


def _param(error, name: str, raw: Any, base_dir: Path, sampler: str) -> Param:
    where = f"parameter {name!r}"
    if isinstance(raw, dict) and set(raw) == {"choices"}:
        raw = raw["choices"]
    if isinstance(raw, list):
        if not raw:
            raise error(f"{where}: no choices; give at least one")
        files = all(isinstance(c, str) and c.endswith(_CONFIG_SUFFIXES) for c in raw)
        if files:
            for choice in raw:
                local = Path(choice) if Path(choice).is_absolute() else base_dir / choice
                if not choice.startswith("lit_dl://") and not local.is_file():
                    raise error(
                        f"{where}: config file {choice!r} does not exist (paths are relative to the sweep file)"
                    )
        return Param(name, "choices", choices=tuple(raw), files=files, base_dir=base_dir)
    kinds = [k for k in _RANGE_OPTIONS if isinstance(raw, dict) and k in raw]
    if len(kinds) != 1:
        raise error(
            f"{where}: give {{float: [low, high]}}, {{int: [low, high]}} or a list of choices, got {raw!r}"
        )
    kind = kinds[0]
    unknown = sorted(set(raw) - {kind, *_RANGE_OPTIONS[kind]})
    if unknown:
        raise error(
            f"{where}: unknown option {unknown[0]!r}; a {kind} range takes {', '.join(_RANGE_OPTIONS[kind])}"
        )
    bounds = raw[kind]
    number = int if kind == "int" else (int, float)
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    ):
        raise error(f"{where}: {kind} needs [low, high] ({kind} numbers), got {bounds!r}")
    low, high = bounds
    if not low < high:
        raise error(f"{where}: empty range [{low}, {high}]; give [low, high] with low < high")
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise error(f"{where}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise error(f"{where}: log range [{low}, {high}] reaches 0 or below; a log scale needs low > 0")
    step = raw.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        raise error(f"{where}: step must be a positive {kind}, got {step!r}")
    if step is not None and log:
        raise error(f"{where}: give step or log, not both")
    grid = raw.get("grid")
    if grid is not None and (isinstance(grid, bool) or not isinstance(grid, int) or grid < 2):
        raise error(f"{where}: grid must be the number of points (2 or more), got {grid!r}")
    if kind == "float":
        low, high = float(low), float(high)
        step = float(step) if step is not None else None
        if sampler == "grid" and grid is None and step is None:
            raise error(
                f"{where}: the grid sampler needs the points of a float range: add 'grid: N' or 'step'"
            )
    return Param(name, kind, low, high, log, step, grid, base_dir=base_dir)
