"""Optimizer values that torch accepts but that train to nonsense: the edges of each allowed range."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lit_dl.errors import ConfigError
from lit_dl.optim.checks import check_optimizer_options, check_optimizer_values


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


@pytest.mark.parametrize(
    ("cls", "options"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "nesterov": True}),
        (torch.optim.Adam, {"lr": 1e-3, "betas": (0.0, 0.999)}),
        (torch.optim.Adadelta, {"lr": 1.0, "rho": 1.0}),
        (torch.optim.Adagrad, {"lr": 0.01, "lr_decay": 0.0, "initial_accumulator_value": 0.0}),
        (torch.optim.NAdam, {"lr": 1e-3, "momentum_decay": 0.0}),
    ],
    ids=["nesterov", "betas-0", "rho-1", "adagrad-zeros", "nadam-momentum-decay-0"],
)
def test_arguments_at_the_edges_of_their_range_are_accepted(cls, options):
    check_optimizer_options(options, cls)


@pytest.mark.parametrize(
    ("cls", "options", "message"),
    [
        (torch.optim.AdamW, {"lr": -0.5}, "AdamW: lr=-0.5, must be a finite number > 0"),
        (
            torch.optim.Adam,
            {"betas": (0.9, 1.0)},
            "Adam: betas=(0.9, 1.0), must be two numbers, each in [0, 1)",
        ),
        (torch.optim.Adadelta, {"rho": -0.1}, "Adadelta: rho=-0.1, must be in [0, 1]"),
        (
            torch.optim.Adagrad,
            {"initial_accumulator_value": -1.0},
            "Adagrad: initial_accumulator_value=-1.0, must be a finite number >= 0",
        ),
        (
            torch.optim.NAdam,
            {"momentum_decay": -1.0},
            "NAdam: momentum_decay=-1.0, must be a finite number >= 0",
        ),
        (
            torch.optim.SGD,
            {"nesterov": True, "momentum": 0.9, "dampening": 0.5},
            "SGD: nesterov=True needs momentum > 0 and dampening=0, got momentum=0.9, dampening=0.5; set momentum "
            "> 0 (0.9 is usual) and dampening=0, or nesterov=false",
        ),
    ],
    ids=[
        "lr-negative",
        "beta-1",
        "rho-negative",
        "accumulator-negative",
        "momentum-decay-negative",
        "nesterov-dampening",
    ],
)
def test_arguments_outside_their_range_are_refused_before_torch_sees_them(cls, options, message):
    with pytest.raises(ConfigError) as error:
        check_optimizer_options(options, cls)
    assert str(error.value) == f"invalid optimizer settings for {message}"
