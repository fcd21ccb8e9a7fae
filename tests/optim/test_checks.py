"""Optimizer values that torch accepts but that train to nonsense: the edges of each allowed range."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.optim.checks import check_optimizer_values


def _build(cls: type[torch.optim.Optimizer], **kwargs) -> torch.optim.Optimizer:
    return cls([nn.Parameter(torch.zeros(1))], **kwargs)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 1.0}),
        (torch.optim.SGD, {"lr": 0.1, "dampening": 0.0}),
        (torch.optim.RMSprop, {"alpha": 1.0}),
        (torch.optim.RMSprop, {"alpha": 0.0}),
        # ASGD's alpha is a power of its step-size decay, not a smoothing constant: any value
        (torch.optim.ASGD, {"alpha": 2.0, "lambd": 0.0}),
    ],
    ids=["sgd-dampening-1", "sgd-dampening-0", "rmsprop-alpha-1", "rmsprop-alpha-0", "asgd-alpha-2"],
)
def test_values_at_the_edges_of_their_range_are_accepted(cls, kwargs):
    check_optimizer_values(_build(cls, **kwargs), cls.__name__)


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (torch.optim.SGD, {"lr": 0.1, "dampening": -0.5}, "SGD: dampening=-0.5, must be in [0, 1]"),
        (torch.optim.SGD, {"lr": 0.1, "dampening": 1.5}, "SGD: dampening=1.5, must be in [0, 1]"),
        (torch.optim.RMSprop, {"alpha": 1.01}, "RMSprop: alpha=1.01, must be in [0, 1]"),
        (torch.optim.ASGD, {"lambd": -1e-4}, "ASGD: lambd=-0.0001, must be a finite number >= 0"),
    ],
    ids=["sgd-dampening-negative", "sgd-dampening-above-1", "rmsprop-alpha-above-1", "asgd-lambd-negative"],
)
def test_values_outside_their_range_are_refused(cls, kwargs, message):
    with pytest.raises(ConfigError) as error:
        check_optimizer_values(_build(cls, **kwargs), cls.__name__)
    assert str(error.value) == f"invalid optimizer settings for {message}"
