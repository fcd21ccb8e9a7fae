"""A weighted mean whose value does not depend on the order or the process that saw each update."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

__all__ = ["OrderInvariantMean"]


class OrderInvariantMean(Metric):
    """Weighted mean of per-batch values, identical on one process and on N.

    ``torchmetrics.MeanMetric`` keeps a running float sum, so the value depends on the order of the
    additions: N processes that each sum their share, then all-reduce, round differently from one
    process that sums every batch. Here each update is kept as one float64 term ``value * weight``
    (exact: a float32 times an integer weight below 2**29 fits in float64's 53-bit mantissa) plus its
    weight, the ranks' terms are concatenated on ``compute``, and the terms are summed in sorted
    order. The same batches therefore give the same bits however they were dealt to processes.
    Memory: two numbers per update (per evaluation batch), not per sample.

    ``update`` appends to lists and never writes a state tensor in place, so a metric last updated
    under ``torch.inference_mode`` (evaluation) can be updated again in training.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    terms: list[Tensor]
    weights: list[Tensor]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("terms", default=[], dist_reduce_fx="cat")
        self.add_state("weights", default=[], dist_reduce_fx="cat")

    def update(self, value: Tensor, weight: int) -> None:
        """Add one batch's mean ``value`` (a scalar tensor) that stands for ``weight`` samples."""
        value = value.detach().reshape(1).to(torch.float64)
        self.terms.append(value * weight)
        self.weights.append(torch.full((1,), weight, dtype=torch.int64, device=value.device))

    def compute(self) -> Tensor:
        if isinstance(self.terms, list) and not self.terms:
            return torch.tensor(float("nan"))  # like MeanMetric before any update
        terms = dim_zero_cat(self.terms)
        total = torch.sort(terms).values.sum()
        return (total / dim_zero_cat(self.weights).sum()).to(torch.get_default_dtype())
