"""lit_dl.optim.RunLengthOneCycleLR: torch's curve with the peak at the optimizer's LR and a run-length total."""

import functools

import pytest
import torch

from lit_dl.errors import ConfigError
from lit_dl.optim import (
    RunLengthOneCycleLR,
    WarmupCosineLR,
    check_scaling_reaches_the_schedule,
    overwrites_group_lr,
)


def _sgd(lr: float = 0.05) -> torch.optim.SGD:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _lrs(scheduler, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        values.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize(("total", "pct"), [(20, 0.3), (31, 0.1), (7, 0.1)])
def test_curve_equals_torch_one_cycle_with_max_lr_at_the_optimizer_lr(total, pct):
    ours = RunLengthOneCycleLR(_sgd(), pct_start=pct, total_steps=total)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        _sgd(), max_lr=0.05, total_steps=total, pct_start=pct, cycle_momentum=False
    )
    assert _lrs(ours, total) == pytest.approx(_lrs(ref, total), rel=1e-12, abs=1e-15)


def test_total_steps_comes_from_the_run_and_the_start_needs_none():
    sched = RunLengthOneCycleLR(_sgd(0.1), total_steps=None)
    assert sched.get_last_lr() == [pytest.approx(0.1 / 25)]
    sched.fit_to_run(10, unit="optimizer steps")
    sched.fit_to_run(99)  # already set: kept (a restored checkpoint's value wins too)
    assert sched.total_steps == 10
    values = _lrs(sched, 10)
    assert max(values) == pytest.approx(0.1) and values[-1] == pytest.approx(0.1 / 25 / 1e4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pct_start": 1.0}, r"pct_start must be in \(0, 1\), got 1.0"),
        ({"div_factor": 0.5}, r"div_factor must be >= 1, got 0.5"),
        ({"final_div_factor": 0.0}, r"final_div_factor must be >= 1, got 0.0"),
        ({"total_steps": 1}, r"total_steps must be >= 2, got 1"),
    ],
)
def test_bad_settings_fail_at_construction(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        RunLengthOneCycleLR(_sgd(), **kwargs)


def test_an_endless_run_needs_total_steps():
    with pytest.raises(
        ConfigError, match="RunLengthOneCycleLR needs total_steps for a run without max_epochs"
    ):
        RunLengthOneCycleLR(_sgd()).fit_to_run(float("inf"))


@pytest.mark.parametrize(
    ("factory", "overwrites"),
    [
        (functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=10), True),
        (functools.partial(torch.optim.lr_scheduler.CyclicLR, base_lr=0.01, max_lr=0.1), True),
        # cannot be built on a one-group probe: judged by its class
        (functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=[0.1, 0.2], total_steps=10), True),
        (functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=3), False),
        (functools.partial(torch.optim.lr_scheduler.StepLR, step_size=2), False),
        (WarmupCosineLR, False),
        (RunLengthOneCycleLR, False),
    ],
    ids=["OneCycleLR", "CyclicLR", "OneCycleLR-lists", "CosineAnnealingLR", "StepLR", "WarmupCosine", "ours"],
)
def test_schedulers_that_overwrite_the_group_lr_are_detected(factory, overwrites):
    assert overwrites_group_lr(factory) is overwrites


def test_lr_scaling_is_refused_with_a_scheduler_that_overwrites_the_lr():
    torch_cycle = functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1, total_steps=10)
    check_scaling_reaches_the_schedule("none", torch_cycle)
    check_scaling_reaches_the_schedule("linear", RunLengthOneCycleLR)
    with pytest.raises(
        ConfigError, match=r"lr_scaling='linear' cannot reach the LR of OneCycleLR: .*lr_scaling: none"
    ):
        check_scaling_reaches_the_schedule("linear", torch_cycle)
