"""One-hot encoding of integer ids, with a clear error for ids out of range."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["OneHot", "one_hot"]


def one_hot(ids: Tensor, num_classes: int, check: bool = True, dtype: torch.dtype = torch.float32) -> Tensor:
    """Integer ids of any shape ``(*)`` -> float one-hot ``(*, num_classes)``.

    Args:
        ids: Integer tensor of class ids in ``[0, num_classes)``.
        num_classes: Size of the last output dimension.
        check: Verify the id range first. Ids on the CPU are checked on the host (a ``ValueError``
            naming the range found). Ids on an accelerator are checked there with an asynchronous
            device-side assert (``torch._assert_async``): no host synchronisation in the training
            step, and a bad id stops the run at the next synchronisation point with the message
            below instead of giving a silently wrong row.
        dtype: Floating dtype of the result.

    Raises:
        ValueError: An id is negative or ``>= num_classes``, or ``ids`` is not an integer tensor.
    """
    if ids.dtype.is_floating_point or ids.dtype == torch.bool or ids.dtype.is_complex:
        raise ValueError(f"one_hot expects an integer tensor of ids, got dtype {ids.dtype}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
    if check and ids.numel():
        if ids.device.type == "cpu":
            if bool(((ids < 0) | (ids >= num_classes)).any()):
                lo, hi = int(ids.min()), int(ids.max())
                raise ValueError(f"one_hot ids must lie in [0, {num_classes}), got values in [{lo}, {hi}]")
        else:
            in_range = ((ids >= 0) & (ids < num_classes)).all()
            torch._assert_async(in_range, f"one_hot ids must lie in [0, {num_classes})")
    return F.one_hot(ids.long(), num_classes).to(dtype)


class OneHot(nn.Module):
    """Module form of :func:`one_hot`: integer ids ``(*)`` -> float ``(*, num_classes)``.

    Args:
        num_classes: Number of distinct ids.
        check: Verify the id range on every call (see :func:`one_hot`).
    """

    def __init__(self, num_classes: int, check: bool = True) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes!r}")
        self.num_classes = num_classes
        self.check = check

    def forward(self, ids: Tensor) -> Tensor:
        return one_hot(ids, self.num_classes, check=self.check)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"
