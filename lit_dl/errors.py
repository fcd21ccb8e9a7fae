"""The error types lit_dl raises: bad user input (config values, files, checkpoints), a diverged run."""

from collections.abc import Callable

__all__ = [
    "ConfigError",
    "CorruptCheckpointError",
    "NonFiniteError",
    "UnsafeCheckpointError",
    "renamed_attributes",
]


class ConfigError(ValueError):
    """A configuration value, file or argument is invalid.

    It is a ``ValueError``, so ``except ValueError`` keeps working; the ``lit-dl`` command prints its
    message alone (no traceback) and exits with status 2.
    """


class UnsafeCheckpointError(ConfigError):
    """A checkpoint or state-dict file holds pickled Python objects beyond tensors and plain containers.

    lit_dl loads with ``torch.load(weights_only=True)``, which refuses them without running any code.
    """


class CorruptCheckpointError(ConfigError):
    """A checkpoint's bytes differ from the checksums written with them (a flipped bit, a torn copy),
    or its weights are not finite."""


class NonFiniteError(RuntimeError):
    """The training loss or a gradient norm became NaN or infinite.

    Raised by :class:`lit_dl.callbacks.NonFiniteGuard`; the ``lit-dl`` command prints its one-line
    message and exits with status 1.
    """


def renamed_attributes(module: str, renamed: dict[str, tuple[str, str]]) -> Callable[[str], object]:
    """A module-level ``__getattr__`` for ``module`` whose old names in ``renamed`` (old name ->
    (new name, the torch or Lightning class the old short name is)) fail naming the new one."""

    def __getattr__(name: str) -> object:
        if name in renamed:
            new, theirs = renamed[name]
            raise AttributeError(
                f"{module}.{name} is now {module}.{new} (the short name {name} is {theirs}'s)"
            )
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
