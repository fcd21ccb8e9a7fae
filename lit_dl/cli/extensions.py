"""Lightning's callbacks, loggers and profilers inside ``lit-dl``: what needs an optional package, what
cannot work with lit_dl, and the parsed values that stop a config from being written.

Each check reads the parsed config, before anything is built or written, and raises a
:class:`~lit_dl.errors.ConfigError` of one line naming the class, the reason and the fix. The table of
every Lightning extension and what happens to it in lit_dl is in ``docs/callbacks.md`` ("Lightning's
callbacks, loggers and tuners").
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import torch
from lightning.pytorch.callbacks import (
    BackboneFinetuning,
    BaseFinetuning,
    DeviceStatsMonitor,
    LearningRateFinder,
    RichModelSummary,
    RichProgressBar,
    StochasticWeightAveraging,
    WeightAveraging,
)
from lightning.pytorch.profilers import AdvancedProfiler, PyTorchProfiler, SimpleProfiler, XLAProfiler
from lightning.pytorch.utilities import rank_zero_info

from lit_dl.errors import ConfigError

__all__ = [
    "EXTRA",
    "check_extensions",
    "entry_class",
    "missing_package_error",
    "one_weight_average",
    "plain_values",
]

EXTRA = "callbacks"
"""The ``pip install 'lit-dl[callbacks]'`` extra that brings the packages of Lightning's optional callbacks."""


def _on_cpu(trainer: Mapping[str, Any]) -> bool:
    """Whether the run's accelerator is the CPU (``auto`` without a GPU included)."""
    accelerator = str(trainer.get("accelerator") or "auto")
    if accelerator == "cpu":
        return True
    mps = getattr(torch.backends, "mps", None)
    gpu = torch.cuda.is_available() or (mps is not None and mps.is_available())
    return accelerator == "auto" and not gpu


class _Needs(NamedTuple):
    """An extension that needs ``package`` when ``applies(init_args, trainer config)``."""

    cls: type
    package: str
    applies: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
    why: str
    install: str = f"pip install 'lit-dl[{EXTRA}]'"


_NEEDS_PACKAGE: tuple[_Needs, ...] = (
    _Needs(RichProgressBar, "rich", lambda args, trainer: True, "draws with rich"),
    _Needs(RichModelSummary, "rich", lambda args, trainer: True, "draws with rich"),
    _Needs(
        DeviceStatsMonitor,
        "psutil",
        lambda args, trainer: (
            args.get("cpu_stats") is True or (args.get("cpu_stats") is None and _on_cpu(trainer))
        ),
        "reads CPU stats with psutil",
    ),
    _Needs(
        XLAProfiler,
        "torch_xla",
        lambda args, trainer: True,
        "profiles XLA devices (TPUs) through torch_xla",
        "it runs on a machine with torch_xla; use simple, advanced or pytorch here",
    ),
)


class _Refused(NamedTuple):
    """An extension that cannot work in a lit_dl fit when ``applies(init_args, config)``."""

    cls: type
    applies: Callable[[Mapping[str, Any], Mapping[str, Any]], bool]
    why: str


def _model_arg(config: Mapping[str, Any], name: str) -> Any:
    model: Any = config.get("model") or {}
    init_args: Any = model.get("init_args") if hasattr(model, "get") else None
    return init_args.get(name) if hasattr(init_args, "get") else None


_REFUSED_IN_FIT: tuple[_Refused, ...] = (
    _Refused(
        BackboneFinetuning,
        lambda args, config: True,
        "it freezes the module's `backbone`, which in a lit_dl task is the whole network, classifier head "
        "included (nothing would train before it unfreezes); fine-tune from a checkpoint with "
        "model.init_args.init_from (init_skip_head: true for a new head) instead",
    ),
    _Refused(
        BaseFinetuning,
        lambda args, config: _model_arg(config, "lr_scheduler") is not None,
        "it adds parameter groups during the fit, and the LR scheduler built on the first groups fails at "
        "its next step; use it with model.init_args.lr_scheduler=null",
    ),
    _Refused(
        LearningRateFinder,
        lambda args, config: (
            args.get("update_attr", True) and _model_arg(config, "lr_scaling") not in (None, "none")
        ),
        "it finds the LR for this run's batch, which lr_scaling would scale again; set "
        "model.init_args.lr_scaling=none with the finder",
    ),
)


def entry_class(entry: Any) -> type | None:
    """The class a parsed ``class_path`` entry (of ``trainer.callbacks``, ``logger``, ``profiler``) names,
    or ``None`` (a plain string such as ``profiler: simple``, an instance)."""
    class_path = entry.get("class_path") if hasattr(entry, "get") else None
    if not isinstance(class_path, str) or "." not in class_path:
        return None
    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) else None


# `trainer.profiler: <name>`: the classes Lightning builds for its names (lightning 2.6.6)
_PROFILER_NAMES: dict[str, type] = {
    "simple": SimpleProfiler,
    "advanced": AdvancedProfiler,
    "pytorch": PyTorchProfiler,
    "xla": XLAProfiler,
}


def _entries(trainer: Mapping[str, Any]) -> Iterator[tuple[str, str, type | None, Mapping[str, Any]]]:
    """``(option, name, class, init_args)`` for every class_path entry of the trainer's callbacks,
    loggers and profiler (and a profiler given by Lightning's name)."""
    for option in ("callbacks", "logger", "profiler"):
        value = trainer.get(option)
        if option == "profiler" and isinstance(value, str):
            yield "trainer.profiler", value, _PROFILER_NAMES.get(value.lower()), {}
            continue
        entry: Any
        for entry in value if isinstance(value, list) else [value]:
            if hasattr(entry, "get") and entry.get("class_path"):
                yield (
                    f"trainer.{option}",
                    entry["class_path"],
                    entry_class(entry),
                    entry.get("init_args") or {},
                )


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # ValueError: a module in sys.modules without a spec
        return False


def check_extensions(config: Mapping[str, Any], subcommand: str | None) -> None:
    """Refuse, before anything is built, an extension whose package is missing or that cannot work here.

    Args:
        config: The subcommand's parsed config (``trainer``, ``model``, ...).
        subcommand: ``fit``, ``validate``, ``test``, ``predict``; the refusals of what cannot work apply
            to ``fit``.

    Raises:
        ConfigError: naming the option, the class and the package to install (with lit_dl's extra),
            or why the class cannot work with lit_dl.
    """
    trainer = config.get("trainer") or {}
    for option, name, cls, init_args in _entries(trainer):
        if cls is None:
            continue
        for needs in _NEEDS_PACKAGE:
            if (
                issubclass(cls, needs.cls)
                and needs.applies(init_args, trainer)
                and not _installed(needs.package)
            ):
                raise ConfigError(
                    f"{option}: {name} {needs.why}, and the package {needs.package} is not installed; "
                    f"{needs.install}"
                )
        if subcommand != "fit":
            continue
        for refused in _REFUSED_IN_FIT:
            if issubclass(cls, refused.cls) and refused.applies(init_args, config):
                raise ConfigError(f"{option}: {name} cannot work with lit_dl here: {refused.why}")


# Callbacks whose average becomes the model: a run has one (two would each swap their own weights in).
_WEIGHT_AVERAGES = (WeightAveraging, StochasticWeightAveraging)


def one_weight_average(config: Mapping[str, Any]) -> None:
    """Keep only the last weight-averaging callback of ``trainer.callbacks`` (EMA, SWA), in place.

    The averaged weights are the model, and a run has one average, so a switch composed later
    (``--config configs/callbacks/swa.yaml`` or ``ema.yaml``) replaces the one the recipe already has,
    as a later config file's value replaces an earlier one's; one line names what was replaced. The
    run folder's ``config.yaml`` then holds the average that trained.

    Args:
        config: The subcommand's parsed config (``trainer``, ``model``, ...).
    """
    trainer: Any = config.get("trainer") or {}
    callbacks = trainer.get("callbacks")
    if not isinstance(callbacks, list):
        return
    averages = [i for i, entry in enumerate(callbacks) if _is_weight_average(entry)]
    if len(averages) < 2:
        return
    kept = callbacks[averages[-1]]
    replaced = [callbacks[i] for i in averages[:-1]]
    trainer["callbacks"] = [entry for i, entry in enumerate(callbacks) if i not in averages[:-1]]
    rank_zero_info(
        f"trainer.callbacks: {_describe(kept)} replaces the earlier {', '.join(map(_describe, replaced))} "
        "(a run has one weight average; the later one in the list is kept)"
    )


def _is_weight_average(entry: Any) -> bool:
    cls = entry_class(entry)
    return cls is not None and issubclass(cls, _WEIGHT_AVERAGES)


def _describe(entry: Any) -> str:
    """``Name(arg=value, ...)`` of a parsed class_path entry, with the arguments its config sets."""
    name = str(entry["class_path"]).rpartition(".")[2]
    init_args = entry.get("init_args") or {}
    shown = ("decay", "swa_epoch_start", "swa_lrs")
    args = ", ".join(f"{key}={init_args[key]!r}" for key in shown if init_args.get(key) is not None)
    return f"{name}({args})"


_CLASS_PATH = re.compile(r"Problem with given class_path '([\w.]+)'")


def missing_package_error(err: BaseException) -> ConfigError | None:
    """One line for a class whose constructor raised ``ModuleNotFoundError`` while the config was
    instantiated (a logger or callback whose package is not installed), or ``None``.

    jsonargparse reports the class path in the ``ValueError`` it raises; the package's own message
    (Lightning's "requires `X`... pip install X") is kept.
    """
    class_path = None
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        match = _CLASS_PATH.search(str(current))
        if match and class_path is None:
            class_path = match.group(1)
        if isinstance(current, ModuleNotFoundError):
            message = " ".join(str(current).split())
            return ConfigError(f"{class_path}: {message}" if class_path else message)
        current = current.__cause__ or current.__context__
    return None


def plain_values(value: Any) -> Any:
    """Replace, in place, the defaults of a parsed config that it cannot be written with by their
    strings: a string enum (Lightning's ``Timer`` defaults ``interval`` to ``Interval.step``) and a
    ``torch.device`` (``StochasticWeightAveraging``'s ``device``). Returns ``value``."""
    items = value.items() if hasattr(value, "items") else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, enum.Enum) and isinstance(item, str):
            value[key] = item.value
        elif isinstance(item, torch.device):
            value[key] = str(item)
        elif hasattr(item, "items") or isinstance(item, list):
            plain_values(item)
    return value
