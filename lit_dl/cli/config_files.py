"""Config files given with ``--config``: the shipped recipes by name, and one clear error per bad file.

The YAML recipes in the repository's ``configs/`` folder are installed with the package
(``lit_dl/configs``), so a project that installed lit-dl with pip composes them by name::

    lit-dl fit --config lit_dl://digits_mlp.yaml --config lit_dl://optimizer/sgd.yaml
    lit-dl fit --config configs/digits_mlp.yaml --config optimizer/sgd.yaml   # no such local file

A path that exists locally always wins; otherwise ``configs/<name>`` or ``<name>`` is looked up among
the shipped files. Paths inside a shipped file (``callbacks: callbacks/default.yaml``) resolve next to
it, as for any config file. ``lit_dl://<name>`` also works wherever jsonargparse takes a file as a
value, inside a config file or on the command line (``callbacks: lit_dl://callbacks/default.yaml``):
the CLI's parser reads YAML through :func:`load_yaml` (the parser mode :data:`PARSER_MODE`), which
replaces such names by the shipped file's path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader

from lit_dl.checkpointing.loading import check_readable_file
from lit_dl.errors import ConfigError

__all__ = [
    "PARSER_MODE",
    "SCHEME",
    "check_config_file",
    "load_yaml",
    "resolve_config_arguments",
    "resolve_config_path",
    "shipped_configs",
]

SCHEME = "lit_dl://"
_CONFIG_FLAGS = ("--config", "-c")
PARSER_MODE = "lit_dl_yaml"
"""jsonargparse's ``parser_mode`` of the CLI's parsers: YAML with ``lit_dl://`` names resolved."""


def shipped_configs() -> Path:
    """The folder of YAML recipes installed with lit_dl (``lit_dl/configs``)."""
    return Path(str(resources.files("lit_dl") / "configs"))


def _shipped_names() -> list[str]:
    root = shipped_configs()
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.yaml"))


def resolve_config_path(value: str) -> str:
    """The file that ``--config value`` means: a local path, else a shipped recipe of that name.

    Args:
        value: What the user gave: a path, ``lit_dl://<name>``, or the name of a shipped file
            (``optimizer/sgd.yaml``, ``configs/optimizer/sgd.yaml``).

    Raises:
        ConfigError: ``lit_dl://<name>`` names no shipped file.
    """
    if value.startswith(SCHEME):
        name = value.removeprefix(SCHEME).lstrip("/")
        path = shipped_configs() / name
        if not path.is_file():
            raise ConfigError(f"no shipped config {value!r}; shipped configs: {', '.join(_shipped_names())}")
        return str(path)
    if _is_inline(value) or Path(value).exists():
        return value  # a config given inline, or a local file
    for name in (value, value.removeprefix("configs/")):
        path = shipped_configs() / name
        if not Path(name).is_absolute() and path.is_file():
            return str(path)
    return value  # jsonargparse reports the missing file


def check_config_file(path: str) -> None:
    """Fail with the file's name when it is not a YAML mapping: binary, syntax error, empty, a list.

    Raises:
        ConfigError: naming ``path`` and, for a syntax error, the line and column.
    """
    file = Path(path)
    if not file.is_file():
        if file.is_dir():
            raise ConfigError(f"config {path!r} is a directory, not a YAML file")
        if not file.is_symlink() and not _exists(file):
            return  # jsonargparse reports the missing file (or it is an inline config)
        check_readable_file(file, "config")  # a pipe (reading it would wait forever), a device, a bad link
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {path!r} is not a text file (not UTF-8); give a YAML file") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ConfigError(f"config {path!r} is not valid YAML{where}: {problem}") from None
    if content is None:
        raise ConfigError(f"config {path!r} is empty; it must hold a mapping such as 'trainer: {{...}}'")
    if not isinstance(content, dict):
        raise ConfigError(
            f"config {path!r} holds a {type(content).__name__} at the top level; it must be a mapping "
            "of option names to values (trainer:, model:, data:)"
        )


def _exists(file: Path) -> bool:
    try:
        return file.exists()
    except OSError:  # a name too long to look up: jsonargparse reports it
        return False


def resolve_config_arguments(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config``/``-c`` value resolved (:func:`resolve_config_path`) and checked,
    and every other ``lit_dl://<name>`` value replaced by the shipped file's path."""
    out: list[str] = []
    expect_value = False
    for arg in argv:
        if expect_value:
            arg = _resolve_and_check(arg)
            expect_value = False
        elif arg in _CONFIG_FLAGS:
            expect_value = True
        else:
            flag, eq, value = arg.partition("=")
            if eq and flag in _CONFIG_FLAGS:
                arg = f"{flag}={_resolve_and_check(value)}"
            elif eq and value.startswith(SCHEME):  # --trainer.callbacks=lit_dl://callbacks/default.yaml
                arg = f"{flag}={resolve_config_path(value)}"
            elif arg.startswith(SCHEME):  # the value of the option before it
                arg = resolve_config_path(arg)
        out.append(arg)
    return out


def _is_inline(value: str) -> bool:
    """``--config '{trainer: {max_epochs: 3}}'``: jsonargparse also takes the config itself."""
    return value.lstrip().startswith(("{", "[")) or "\n" in value


def _resolve_and_check(value: str) -> str:
    if _is_inline(value):
        return value
    path = resolve_config_path(value)
    check_config_file(path)
    return path


def load_yaml(text: str) -> Any:
    """jsonargparse's YAML loader, then every string value ``lit_dl://<name>`` replaced by the path of
    the shipped file (:func:`resolve_config_path`), at any depth. jsonargparse then reads a path given
    where a value is expected as a config file, relative paths inside it resolved next to it."""
    return _resolve_shipped_names(get_loader("yaml")(text))


def _resolve_shipped_names(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(SCHEME):
        return resolve_config_path(value)
    if isinstance(value, dict):
        return {key: _resolve_shipped_names(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_shipped_names(item) for item in value]
    return value


# A new mode name: parsers that do not ask for it (plain LightningCLI's) are unchanged.
set_loader(PARSER_MODE, load_yaml, exceptions=(yaml.YAMLError,))
