"""Turn the errors that bad input causes inside jsonargparse, Lightning and torch into one-line ConfigErrors.

The ``lit-dl`` command promises one line naming the bad value for every bad input. lit_dl's own checks
raise :class:`~lit_dl.errors.ConfigError` directly; this module rewrites the rest:

- :func:`summarize_parse_error`: jsonargparse's multi-line report (every Union member it tried) into
  ``<key>: got <value>; <reason>``, keeping the value the user typed.
- :func:`trainer_error`: an exception raised while building the ``Trainer`` (accelerator, devices,
  strategy, precision...) into a message naming the ``trainer.*`` option.
- :func:`training_error`: what a Trainer method raised that names no value (a full disk, an anomaly
  that ``detect_anomaly`` found) into a message naming the run folder or the step.
- :func:`to_config_error`: any exception into the ConfigError it stands for, or ``None`` for a real bug
  (which keeps its traceback).
"""

from __future__ import annotations

import errno
import importlib
import inspect
import re
from collections.abc import Mapping
from typing import Any

from lightning.fabric.utilities.exceptions import MisconfigurationException

from lit_dl.errors import ConfigError, NonFiniteError

__all__ = ["summarize_parse_error", "to_config_error", "trainer_error", "training_error"]

# Lines of a jsonargparse report that name none of the user's values.
_NOISE = re.compile(
    r"^(Does not validate against any of the Union subtypes|Subtypes: |Errors:$|Given value type: "
    r"|Expected a <class 'NoneType'>|Expected a path but .* either not accessible or invalid"
    r"|Expected a dot import path string|Subclass types expect one of:|- a class path \(str\)"
    r"|a dict (with|without) |tip: )"
)
_PARSER_KEY = re.compile(r'^Parser key "([\w.]+)":\s*(.*)$')
_NESTED_VALUE = re.compile(r"^Given value: NestedArg\(key='([\w.]+)', val=(.*)\)$")
_GOT_VALUE = re.compile(r"\.? Got value: (.*)$")
_EXPECTED = re.compile(r"^Expected an? (.*)$")
_MISSING_ATTR = re.compile(r"module '([\w.]+)' has no attribute '(\w+)'")
# Text that Python's float() reads as NaN or infinity but YAML 1.1 reads as a string.
_NON_FINITE_TEXT = re.compile(r"[+-]?(nan|inf|infinity)", re.IGNORECASE)
_BASES = {
    "torch.optim": "torch.optim.Optimizer",
    "torch.optim.lr_scheduler": "torch.optim.lr_scheduler.LRScheduler",
}


def _valid_names(module_name: str) -> list[str]:
    """Public classes of ``module_name`` that subclass its base (optimizers, schedulers)."""
    module = importlib.import_module(module_name)
    base_module, base_name = _BASES[module_name].rsplit(".", 1)
    base = getattr(importlib.import_module(base_module), base_name)
    return sorted(
        name
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, base) and obj is not base and not name.startswith("_")
    )


def _type_name(expected: str) -> str:
    """``<class 'int'>`` -> ``int``; ``typing.Literal['a', 'b']`` -> ``one of 'a', 'b'``."""
    expected = expected.strip()
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", expected)
    if literal:
        return f"one of {literal.group(1)}"
    cls = re.fullmatch(r"<class '([\w.]+)'>", expected)
    if cls:
        return cls.group(1).rsplit(".", 1)[-1]
    return expected


def summarize_parse_error(message: str) -> str:
    """One line from a jsonargparse error: ``<key>: got <value>; <reason>``.

    The key is the full option path (``model.dropout``, ``trainer.precision``), the value is the text
    the user gave, and the reason the most specific line of jsonargparse's report; a union of plain
    types becomes ``expected int or null`` and a ``Literal`` lists its choices.
    """
    lines = [line.strip() for line in message.strip().splitlines()]
    lines = [line[2:] if line.startswith("- ") else line for line in lines if line]
    keys: list[str] = []
    value: str | None = None
    # The outermost report ends with the nested key and the text the user gave.
    for line in reversed(lines):
        nested = _NESTED_VALUE.match(line)
        if nested:
            value = nested.group(2).strip("'\"")
            break
    reasons: list[str] = []
    expected: list[str] = []
    for line in lines:
        nested = _NESTED_VALUE.match(line)
        if nested:
            keys = [keys[0], nested.group(1)] if keys else [nested.group(1)]
            continue
        # "...expects a function or a callable class: Parser key "lr":" -> the inner report follows
        inner_key = re.search(r'Parser key "([\w.]+)":\s*(.*)$', line)
        if inner_key:
            keys.append(inner_key.group(1))
            line = inner_key.group(2)
            if not line:
                continue
        line = re.sub(r"^Type .* expects a function or a callable class: ", "", line)
        got = _GOT_VALUE.search(line)
        if got:
            line = line[: got.start()]
            if value is None and not got.group(1).startswith("Namespace("):
                value = got.group(1)
        if line.startswith("Given value: "):
            value = value if value is not None else line.removeprefix("Given value: ")
            continue
        if _NOISE.match(line):
            if line.startswith("Expected a <class 'NoneType'>"):
                expected.append("null")
            continue
        kind = _EXPECTED.match(line)
        if kind:
            expected.append(_type_name(kind.group(1)))
            continue
        if line.startswith("Problem with given class_path") and line.endswith(":"):
            continue
        reasons.append(line.rstrip(":"))
    key = ".".join(dict.fromkeys(keys))
    if not reasons and expected:
        # several Literal members (trainer.precision) read as one list of choices
        choices = [e.removeprefix("one of ") for e in expected if e.startswith("one of ")]
        types = [e for e in expected if not e.startswith("one of ") and e != "null"]
        named = ([f"one of {', '.join(choices)}"] if choices else []) + types
        named += ["null"] if "null" in expected else []
        reasons = ["expected " + " or ".join(dict.fromkeys(named))]
    reason = "; ".join(dict.fromkeys(reasons)) or "invalid value"
    missing = _MISSING_ATTR.search(reason)
    if missing and missing.group(1) in _BASES:
        reason += f"; valid classes in {missing.group(1)}: {', '.join(_valid_names(missing.group(1)))}"
    reason = reason.replace('"<unicode string>"', "the config")
    if not key:
        return reason if value is None else f"{reason} (got {value})"
    shown = "" if value is None else f"got {value!r}; "
    if value is not None and _NON_FINITE_TEXT.fullmatch(value) and "float" in reason:
        # 'nan' looks like a float, but YAML reads it as text: say so, or "got 'nan'; expected float" contradicts itself
        shown = f"got {value!r}, which YAML reads as text, not a number; "
        reason += " (YAML writes NaN as .nan and infinity as .inf)"
    return f"{key}: {shown}{reason}"


# Trainer messages that name no value or point the wrong way, rewritten.
_TRAINER_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"No supported gpu backend found"),
        "trainer.accelerator={accelerator!r} needs a CUDA or MPS GPU and none is available here; "
        "use accelerator 'cpu' or 'auto'",
    ),
    (
        re.compile(r"`(\w+)Accelerator` can not run on your system since the accelerator is not available"),
        "trainer.accelerator={accelerator!r}: that device is not available here; use accelerator 'cpu' or 'auto'",
    ),
]
_OPTION_NAMES = re.compile(r"`(\w+)`|\b(\w+)=")


def trainer_error(err: BaseException, trainer_config: Mapping[str, Any]) -> ConfigError:
    """The ConfigError for ``err``, raised while building the Trainer from ``trainer_config``.

    The message names the ``trainer.<option>`` and the value given whenever the exception mentions one.
    """
    text = " ".join(str(err).split()) or type(err).__name__
    values = {key: trainer_config.get(key) for key in ("accelerator", "devices", "strategy", "precision")}
    for pattern, template in _TRAINER_REWRITES:
        if pattern.search(text):
            return ConfigError(template.format(**values))
    if isinstance(err, ImportError):
        given = ", ".join(f"{k}={v!r}" for k, v in values.items() if v not in (None, "auto"))
        return ConfigError(f"trainer {given} needs a package that is not installed: {text}")
    for match in _OPTION_NAMES.finditer(text):
        name = match.group(1) or match.group(2)
        if name in trainer_config:
            return ConfigError(f"trainer.{name}={trainer_config[name]!r}: {text}")
    return ConfigError(f"invalid trainer settings: {text}")


# RuntimeErrors that Lightning raises for a setting, not for a bug (lightning 2.6.6).
_CONFIG_RUNTIME_ERRORS = re.compile(
    r"Early stopping conditioned on metric `[^`]*` which is not available"
    # two ModelCheckpoint callbacks with the same settings (the bundle's AtomicCheckpoint is one)
    r"|Found more than one stateful callback of type `\w+`"
)

# ValueErrors that Lightning raises for a setting once it knows the data (lightning 2.6.6): pattern ->
# the message, from the pattern's groups.
_CONFIG_VALUE_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(
            r"`val_check_interval` \((\d+)\) must be less than or equal to the number of the training "
            r"batches \((\d+)\)"
        ),
        "trainer.val_check_interval={0} is more than the {1} training batches of an epoch; give at most {1}, "
        "a fraction of an epoch (0.5: twice an epoch), or check_val_every_n_epoch=null to count batches "
        "across epochs",
    ),
]

# torch.autograd.detect_anomaly's report: "Function 'NativeBatchNormBackward0' returned nan values in
# its 0th output."
_ANOMALY = re.compile(r"Function '(\w+)' returned (nan|inf) values in its (\d+)\w* output")

# errno values of a disk that cannot take the run's files
_DISK_FULL = {errno.ENOSPC: "is full", errno.EDQUOT: "is over its quota", errno.EROFS: "is read-only"}


def training_error(err: BaseException, trainer: Any) -> Exception | None:
    """What a Trainer method's exception ``err`` says about the run, in one line, or ``None``.

    - A write that failed because the disk is full, over quota or read-only, without naming its file
      (Lightning's ``hparams.yaml``, an event file): a :class:`ConfigError` naming the run folder.
    - ``trainer.detect_anomaly``'s report of a NaN or infinity in the backward pass, which names no
      step: a :class:`~lit_dl.errors.NonFiniteError` (exit status 1, as for
      :class:`~lit_dl.callbacks.NonFiniteGuard`) naming the step and epoch.

    Args:
        err: The exception the Trainer method raised.
        trainer: The Trainer (its logger's folder, its step and epoch).
    """
    if isinstance(err, OSError) and err.errno in _DISK_FULL and not err.filename:
        logger = trainer.logger
        folder = getattr(logger, "log_dir", None) if logger is not None else trainer.default_root_dir
        return ConfigError(
            f"the disk of the run folder {str(folder)!r} {_DISK_FULL[err.errno]} ({err.strerror}): free "
            "space there or give --trainer.default_root_dir on another disk"
        )
    anomaly = _ANOMALY.search(str(err)) if isinstance(err, RuntimeError) else None
    if anomaly:
        function, value, output = anomaly.groups()
        return NonFiniteError(
            f"trainer.detect_anomaly: the backward pass of step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}) gave {value} in output {output} of {function}: the loss or the "
            "weights diverged; lower the learning rate, clip gradients (trainer.gradient_clip_val) or "
            "resume from an earlier checkpoint"
        )
    return None


def to_config_error(err: BaseException) -> ConfigError | None:
    """The ConfigError that ``err`` stands for, or ``None`` when it is not a configuration problem.

    Looks through the exception's explicit causes (``raise ... from``: jsonargparse and lit_dl wrap
    what a constructor raised that way): a :class:`ConfigError` is returned as is; Lightning's
    ``MisconfigurationException`` (by its name, always the user's settings) and the few RuntimeErrors it
    raises for a setting (an EarlyStopping monitor that is never logged) become one; an ``OSError``
    naming a file becomes one naming the file. An exception raised while another was being handled
    (``__context__`` only) is a new error, not a wrapper: code that turns a ``FileNotFoundError`` into a
    ``KeyError`` (a cache miss gone wrong) has a bug, and it keeps its traceback.
    """
    seen: set[int] = set()
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__
    for candidate in chain:
        if isinstance(candidate, ConfigError):
            return candidate
    for candidate in chain:
        if isinstance(candidate, RuntimeError) and _CONFIG_RUNTIME_ERRORS.match(str(candidate)):
            return ConfigError(" ".join(str(candidate).split()))
        if isinstance(candidate, MisconfigurationException):
            return ConfigError(" ".join(str(candidate).split()))
        if type(candidate) is ValueError:
            for pattern, template in _CONFIG_VALUE_ERRORS:
                found = pattern.search(str(candidate))
                if found:
                    return ConfigError(template.format(*found.groups()))
        if isinstance(candidate, OSError) and candidate.filename and candidate.strerror:
            return ConfigError(f"{candidate.strerror}: {str(candidate.filename)!r}")
    return None
