"""lit_dl: classic deep-learning training recipes as PyTorch Lightning modules, data modules and callbacks."""

from importlib.metadata import PackageNotFoundError, version

from lit_dl.errors import ConfigError

try:
    __version__ = version("lit-dl")  # the one version source: pyproject.toml's [project] version
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"

__all__ = ["ConfigError", "__version__"]
