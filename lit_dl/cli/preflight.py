"""Checks that must run before the CLI imports Lightning: an installed package that breaks every import.

torchmetrics (imported by Lightning) imports torchvision whenever it is installed. A torchvision built
for another torch (the package index's default build beside a CPU torch, or after a torch upgrade)
fails inside that import with an error that names neither package's version, and every command,
the digits recipe included, stops with a traceback. :func:`exit_if_torchvision_unusable` turns that
into one line and exit status 2.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys

__all__ = ["exit_if_torchvision_unusable", "torchvision_problem"]


def torchvision_problem() -> str | None:
    """Why the installed torchvision cannot be imported beside this torch, naming both versions and the
    fix; ``None`` when torchvision is absent or imports."""
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        importlib.import_module("torchvision")
    except Exception as err:  # RuntimeError (missing operators), OSError/ImportError (CUDA libraries)
        import torch

        try:
            version = importlib.metadata.version("torchvision")
        except importlib.metadata.PackageNotFoundError:
            version = "(unknown version)"
        major, minor = (int(p) for p in torch.__version__.split(".")[:2])
        matching = f"0.{minor + 15}.*" if major == 2 else "the release made for it"
        index = " --index-url https://download.pytorch.org/whl/cpu" if "+cpu" in torch.__version__ else ""
        reason = " ".join(f"{type(err).__name__}: {err}".split())
        return (
            f"torchvision {version} cannot be imported beside torch {torch.__version__} ({reason}): it "
            "was built for another torch, and torchmetrics imports it whenever it is installed; install "
            f"the build for this torch (pip install 'torchvision=={matching}'{index}) or remove it "
            "(pip uninstall torchvision; only MNIST/CIFAR downloads need it)"
        )
    return None


def exit_if_torchvision_unusable() -> None:
    """Print ``lit-dl: error: <torchvision_problem()>`` and exit with status 2 when there is one."""
    problem = torchvision_problem()
    if problem is not None:
        print(f"lit-dl: error: {problem}", file=sys.stderr)
        sys.exit(2)
