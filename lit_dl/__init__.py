"""lit_dl: classic deep-learning training recipes as PyTorch Lightning modules, data modules and callbacks."""

from lit_dl.errors import ConfigError

__version__ = "0.1.0"

__all__ = ["ConfigError", "__version__"]
