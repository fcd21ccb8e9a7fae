"""The error type lit_dl raises for bad user input (config values, files, checkpoints)."""

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration value, file or argument is invalid.

    It is a ``ValueError``, so ``except ValueError`` keeps working; the ``lit-dl`` command prints its
    message alone (no traceback) and exits with status 2.
    """
