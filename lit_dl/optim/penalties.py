"""Explicit regularisation terms added to the loss."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["l1_penalty"]


def l1_penalty(params: Iterable[Tensor]) -> Tensor:
    """``Σ |w|`` over ``params`` (L1 / lasso penalty; Tibshirani, 1996), one fused reduction.

    Raises:
        ValueError: ``params`` is empty.
    """
    params = list(params)
    if not params:
        raise ValueError("l1_penalty needs at least one parameter")
    # One kernel per tensor plus one stack: no Python-side accumulation, no host sync.
    return torch.stack([p.abs().sum() for p in params]).sum()
