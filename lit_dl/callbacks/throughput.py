"""``batch_size``: the samples in a batch, the ``batch_size_fn`` Lightning's ``ThroughputMonitor`` needs.

``ThroughputMonitor`` takes a function, which YAML can name by its import path::

    - class_path: lightning.pytorch.callbacks.ThroughputMonitor
      init_args:
        batch_size_fn: lit_dl.callbacks.batch_size
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["batch_size"]


def batch_size(batch: Any) -> int:
    """The number of samples in ``batch``: the length of its first tensor's first dimension.

    Works for the batches of every lit_dl data module (``(inputs, targets)``) and for a tensor, a
    tuple/list or a mapping of tensors (the first value, in order).

    Raises:
        TypeError: the batch holds no tensor.
    """
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    items = (
        batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    )
    for item in items:
        try:
            return batch_size(item)
        except TypeError:
            continue
    raise TypeError(f"batch_size: no tensor in a batch of type {type(batch).__name__}")
