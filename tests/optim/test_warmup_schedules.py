"""Warmup schedules: exact values, the minimum LR, state_dict resume and configuration errors."""

import math

import pytest
import torch

from lit_dl.errors import ConfigError
from lit_dl.optim import WarmupCosineLR, WarmupStepLR


def _optimizer(lrs=(0.1,)):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, lr=lrs[0])


def _run(scheduler, steps):
    values = []
    for _ in range(steps):
        values.append([g["lr"] for g in scheduler.optimizer.param_groups])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def test_warmup_cosine_values():
    sched = WarmupCosineLR(
        _optimizer((0.1, 0.2)), warmup_steps=4, warmup_start_factor=0.2, min_lr=0.01, total_steps=10
    )
    values = _run(sched, 12)
    for base, column in zip((0.1, 0.2), zip(*values, strict=True), strict=True):
        expected = [base * (0.2 + 0.8 * t / 4) for t in range(4)]
        expected += [0.01 + (base - 0.01) * 0.5 * (1 + math.cos(math.pi * s / 6)) for s in range(6)]
        expected += [0.01, 0.01]
        assert list(column) == pytest.approx(expected, rel=1e-12)


def test_warmup_step_values_floor_at_min_lr():
    sched = WarmupStepLR(
        _optimizer(), step_size=2, gamma=0.1, warmup_steps=2, warmup_start_factor=0.5, min_lr=0.0005
    )
    values = [v[0] for v in _run(sched, 9)]
    assert values == pytest.approx([0.05, 0.075, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0005], rel=1e-12)


def test_no_warmup_starts_at_the_base_lr():
    sched = WarmupCosineLR(_optimizer(), warmup_steps=0, total_steps=4)
    assert [v[0] for v in _run(sched, 2)] == pytest.approx([0.1, 0.1 * 0.5 * (1 + math.cos(math.pi / 4))])


def test_state_dict_resumes_step_for_step():
    full = [v[0] for v in _run(WarmupCosineLR(_optimizer(), warmup_steps=3, total_steps=12), 12)]
    first = WarmupCosineLR(_optimizer(), warmup_steps=3, total_steps=None)
    first.fit_to_run(12)
    head = [v[0] for v in _run(first, 5)]
    # The order Lightning restores in: build both fresh, then load the optimizer, then the scheduler.
    second = WarmupCosineLR(_optimizer(), warmup_steps=3, total_steps=None)
    second.optimizer.load_state_dict(first.optimizer.state_dict())
    second.load_state_dict(first.state_dict())
    assert second.total_steps == 12
    tail = [v[0] for v in _run(second, 7)]
    assert head + tail == pytest.approx(full, rel=1e-12)


def test_fit_to_run_fills_total_steps_only_when_unset():
    sched = WarmupCosineLR(_optimizer(), warmup_steps=3, total_steps=20)
    sched.fit_to_run(50)
    assert sched.total_steps == 20
    sched = WarmupCosineLR(_optimizer(), warmup_steps=3)
    sched.fit_to_run(50)
    assert sched.total_steps == 50


def test_cosine_without_total_steps_cannot_go_past_its_first_value():
    sched = WarmupCosineLR(_optimizer(), warmup_steps=1)
    sched.optimizer.step()
    sched.step()  # the end of the warmup: the cosine's start is the base LR whatever its length
    assert sched.get_last_lr() == [0.1]
    sched.optimizer.step()
    with pytest.raises(RuntimeError, match="total_steps is unset"):
        sched.step()


def test_cosine_without_warmup_or_total_steps_builds_and_follows_the_run():
    sched = WarmupCosineLR(_optimizer(), warmup_steps=0, total_steps=None)  # raised at construction
    assert sched.get_last_lr() == [0.1]
    sched.fit_to_run(4)
    values = [v[0] for v in _run(sched, 4)]
    expected = [0.1 * 0.5 * (1 + math.cos(math.pi * t / 4)) for t in range(4)]
    assert values == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_steps": -1}, r"warmup_steps must be >= 0, got -1"),
        ({"warmup_start_factor": 1.5}, r"warmup_start_factor must be in \[0, 1\], got 1.5"),
        ({"min_lr": -0.1}, r"min_lr must be >= 0, got -0.1"),
        ({"min_lr": 0.5}, r"min_lr=0.5 is above the base LR 0.1 of parameter group 0"),
        ({"warmup_steps": 10, "total_steps": 10}, r"warmup_steps=10 is longer than the schedule"),
    ],
    ids=["warmup", "start-factor", "min-lr", "min-lr-above-base", "warmup-vs-total"],
)
def test_warmup_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WarmupCosineLR(_optimizer(), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"step_size": 0}, r"step_size must be >= 1, got 0"),
        ({"step_size": 2, "gamma": 0.0}, r"gamma must be in \(0, 1\], got 0.0"),
        ({}, r"give exactly one of step_size .* got step_size=None, decay_at=None"),
        ({"step_size": 2, "decay_at": [0.5]}, r"give exactly one of step_size"),
        (
            {"decay_at": [0.75, 0.5]},
            r"decay_at must be increasing fractions of the run in \(0, 1\), got \[0.75, 0.5\]",
        ),
        ({"decay_at": [0.5, 1.0]}, r"decay_at must be increasing fractions"),
        ({"decay_at": []}, r"decay_at must be increasing fractions"),
    ],
    ids=["step-size", "gamma", "neither", "both", "unordered", "one", "empty"],
)
def test_step_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WarmupStepLR(_optimizer(), **kwargs)


def test_fit_to_run_rejects_a_warmup_longer_than_the_run():
    sched = WarmupStepLR(_optimizer(), step_size=2, warmup_steps=5)
    with pytest.raises(ConfigError, match=r"warmup_steps=5 is longer than the run: the run has 4 epochs"):
        sched.fit_to_run(4, unit="epochs")


def test_fit_to_run_needs_total_steps_for_an_endless_run():
    sched = WarmupCosineLR(_optimizer(), warmup_steps=5)
    with pytest.raises(ConfigError, match=r"WarmupCosineLR needs total_steps for a run without max_epochs"):
        sched.fit_to_run(float("inf"))


def test_min_lr_above_an_unnamed_group_names_the_group_index():
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 0.1},
        {"params": [torch.nn.Parameter(torch.zeros(3))], "lr": 1e-4},
    ]
    optimizer = torch.optim.SGD(groups, lr=0.1)
    with pytest.raises(ConfigError, match=r"base LR 0.0001 of parameter group 1; use min_lr <= lr"):
        WarmupCosineLR(optimizer, min_lr=1e-3, total_steps=10)


def test_step_decay_at_fractions_follows_the_run_length():
    # 2 warmup steps, then 8 main steps: x0.1 at 4 (half) and at 6 (three quarters)
    sched = WarmupStepLR(
        _optimizer(), decay_at=[0.5, 0.75], gamma=0.1, warmup_steps=2, warmup_start_factor=0.5
    )
    sched.fit_to_run(10, unit="epochs")
    assert sched.total_steps == 10
    lrs = [v[0] for v in _run(sched, 10)]
    expected = [0.05, 0.075] + [0.1] * 4 + [0.1 * 0.1] * 2 + [0.1 * 0.1 * 0.1] * 2
    assert lrs == pytest.approx(expected, rel=1e-12)
    longer = WarmupStepLR(_optimizer(), decay_at=[0.5, 0.75], warmup_steps=2, warmup_start_factor=0.5)
    longer.fit_to_run(18, unit="epochs")  # 16 main steps: decays at 8 and 12 after the warmup
    lrs = [v[0] for v in _run(longer, 18)]
    assert [i for i in range(1, 18) if lrs[i] < lrs[i - 1] and i > 2] == [10, 14]


@pytest.mark.parametrize("run", [20, 57], ids=["20-steps", "57-steps"])
def test_warmup_fraction_follows_the_run_and_equals_the_same_count_of_warmup_steps(run):
    fraction = WarmupCosineLR(_optimizer(), warmup_fraction=0.1, warmup_start_factor=0.2, min_lr=0.01)
    assert fraction.get_last_lr() == [0.1 * 0.2]  # the first value does not wait for the length
    fraction.fit_to_run(run)
    count = WarmupCosineLR(
        _optimizer(), warmup_steps=round(0.1 * run), warmup_start_factor=0.2, min_lr=0.01, total_steps=run
    )
    assert fraction.warmup_steps == round(0.1 * run) and fraction.total_steps == run
    assert _run(fraction, run + 2) == _run(count, run + 2)


def test_warmup_fraction_with_total_steps_and_of_a_step_schedule():
    assert WarmupCosineLR(_optimizer(), warmup_fraction=0.25, total_steps=12).warmup_steps == 3
    assert WarmupCosineLR(_optimizer(), warmup_fraction=0.01, total_steps=12).warmup_steps == 1  # at least 1
    step = WarmupStepLR(_optimizer(), decay_at=[0.5], warmup_fraction=0.1)
    step.fit_to_run(30, unit="epochs")
    assert step.warmup_steps == 3
    values = [v[0] for v in _run(step, 30)]
    assert values[:3] == pytest.approx([0.01, 0.04, 0.07], rel=1e-12)
    assert values[3:] == pytest.approx([0.1] * 14 + [0.01] * 13, rel=1e-12)  # x0.1 from 13.5 of 27 on


def test_warmup_fraction_without_a_length_cannot_go_past_its_first_value():
    sched = WarmupCosineLR(_optimizer(), warmup_fraction=0.1)
    sched.optimizer.step()
    with pytest.raises(RuntimeError, match="total_steps is unset"):
        sched.step()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"warmup_fraction": 1.0}, r"warmup_fraction must be in \[0, 1\), got 1.0"),
        ({"warmup_fraction": -0.1}, r"warmup_fraction must be in \[0, 1\), got -0.1"),
        (
            {"warmup_fraction": 0.1, "warmup_steps": 5},
            r"give one of warmup_steps \(a count\) and warmup_fraction .* got warmup_steps=5, warmup_fraction=0.1",
        ),
    ],
    ids=["one", "negative", "both"],
)
def test_warmup_fraction_rejects_bad_values(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WarmupCosineLR(_optimizer(), **kwargs)
