"""Loading a checkpoint file safely, with one clear error for every way the file can be wrong."""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from lit_dl.errors import ConfigError

__all__ = ["load_checkpoint"]

# What `torch.load(weights_only=True)` names when it refuses a pickled object, e.g.
# "Trying to load unsupported GLOBAL posix.system whose module posix is blocked."
_UNSAFE_GLOBAL = re.compile(r"unsupported GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)")


def load_checkpoint(
    path: str | os.PathLike[str], map_location: Any = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load a Lightning checkpoint with ``torch.load(weights_only=True)``: tensors and plain values only.

    A checkpoint is a pickle, and an unrestricted pickle runs any code it names when loaded; so a
    file that holds anything but tensors, containers and numbers is refused, not loaded.

    Args:
        path: The ``.ckpt`` file.
        map_location: Where to put the tensors (``torch.load``'s argument).
        mmap: Map the tensors' storage from the file instead of reading it (``torch.load``'s
            argument): for reading the hyper-parameters of a large checkpoint without loading it.

    Returns:
        The checkpoint dictionary (``state_dict``, ``hyper_parameters``, loop and optimizer states).

    Raises:
        ConfigError: the file is missing, a directory, empty, truncated, not a torch file, holds
            objects that safe loading refuses, or is not a dictionary with a ``state_dict``.
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"checkpoint {str(path)!r} does not exist")
    if file.is_dir():
        raise ConfigError(f"checkpoint {str(path)!r} is a directory; give the .ckpt file inside it")
    if file.stat().st_size == 0:
        raise ConfigError(f"checkpoint {str(path)!r} is an empty file")
    try:
        # mmap needs torch's zip format; a file without it is not a checkpoint lit-dl writes
        mmap = mmap and zipfile.is_zipfile(file)
        checkpoint = torch.load(file, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        unsafe = _UNSAFE_GLOBAL.search(str(err))
        if unsafe:
            name = unsafe.group(1) or unsafe.group(2)
            raise ConfigError(
                f"checkpoint {str(path)!r} holds a pickled Python object ({name}) that safe loading "
                "(torch.load(weights_only=True)) refuses; lit-dl loads only tensors and plain values"
            ) from None
        raise ConfigError(f"checkpoint {str(path)!r} is not a torch checkpoint file") from None
    except (EOFError, zipfile.BadZipFile) as err:
        raise ConfigError(
            f"checkpoint {str(path)!r} is truncated or corrupt ({type(err).__name__})"
        ) from None
    except RuntimeError as err:
        # torch's zip reader: "PytorchStreamReader failed reading zip archive: failed finding central directory"
        if "PytorchStreamReader" in str(err) or "zip archive" in str(err):
            raise ConfigError(
                f"checkpoint {str(path)!r} is truncated or corrupt (not a complete zip archive)"
            ) from None
        raise
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"checkpoint {str(path)!r} is not a Lightning checkpoint (a dictionary with a 'state_dict')"
        )
    return checkpoint
