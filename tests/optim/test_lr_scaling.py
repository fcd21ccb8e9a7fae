"""The LR scaling rule: global batch arithmetic, factors and the optimizer groups it rewrites."""

import math

import pytest
import torch

from lit_dl.errors import ConfigError
from lit_dl.models import MLPClassifier
from lit_dl.optim import LR_SCALING_RULES, global_batch_size, lr_scale_factor, scale_optimizer_lr

EXPECTED_FACTOR = {"none": 1.0, "linear": 8.0, "sqrt": math.sqrt(8.0)}


def test_every_rule_has_an_expected_factor():
    assert set(LR_SCALING_RULES) == set(EXPECTED_FACTOR)


@pytest.mark.parametrize("mode", sorted(EXPECTED_FACTOR))
def test_two_devices_of_256_over_base_64(mode):
    # Batch 256 on each of 2 devices (1 node, no accumulation): 512 samples per step, 8x the base 64.
    batch = global_batch_size(256, num_devices=2, num_nodes=1, accumulate_grad_batches=1)
    assert batch == 512
    factor = lr_scale_factor(mode, batch, base_batch_size=64)
    assert factor == pytest.approx(EXPECTED_FACTOR[mode], rel=1e-12)

    model = MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[5])
    optimizer = torch.optim.SGD(model.parameter_groups(), lr=0.01, momentum=0.9)
    changes = scale_optimizer_lr(optimizer, factor)
    assert [g["name"] for g in optimizer.param_groups] == ["decay", "no_decay"]
    for group in optimizer.param_groups:
        assert group["lr"] == pytest.approx(0.01 * EXPECTED_FACTOR[mode], rel=1e-12)
    assert optimizer.defaults["lr"] == pytest.approx(0.01 * EXPECTED_FACTOR[mode], rel=1e-12)
    assert changes == [(0.01, optimizer.param_groups[0]["lr"]), (0.01, optimizer.param_groups[1]["lr"])]


def test_scaling_before_the_scheduler_sets_its_base_lrs():
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scale_optimizer_lr(optimizer, 4.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert scheduler.base_lrs == [pytest.approx(0.4)]
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(0.4)


def test_an_existing_initial_lr_is_scaled_with_the_lr():
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.SGD([{"params": [param], "initial_lr": 0.1}], lr=0.1)
    scale_optimizer_lr(optimizer, 2.0)
    assert optimizer.param_groups[0]["initial_lr"] == pytest.approx(0.2)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.2)


def test_global_batch_multiplies_every_factor():
    assert global_batch_size(32, num_devices=4, num_nodes=2, accumulate_grad_batches=3) == 768


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"per_device_batch_size": 0},
            r"per_device_batch_size must be an integer >= 1 for the global batch size, got 0",
        ),
        (
            {"per_device_batch_size": 8, "num_devices": 0},
            r"num_devices must be an integer >= 1 for the global batch size, got 0",
        ),
        (
            {"per_device_batch_size": 8, "num_nodes": -1},
            r"num_nodes must be an integer >= 1 for the global batch size, got -1",
        ),
        (
            {"per_device_batch_size": 8, "accumulate_grad_batches": 1.5},
            r"accumulate_grad_batches must be an integer >= 1 for the global batch size, got 1.5",
        ),
    ],
    ids=["batch", "devices", "nodes", "accumulate"],
)
def test_global_batch_rejects_bad_factors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        global_batch_size(**kwargs)


@pytest.mark.parametrize(
    ("mode", "global_batch", "base", "message"),
    [
        ("cubic", 64, 64, r"lr_scaling must be one of \['linear', 'none', 'sqrt'\], got 'cubic'"),
        ("linear", 64, -64, r"base_batch_size must be an integer >= 1, got -64"),
        ("linear", 64, 0, r"base_batch_size must be an integer >= 1, got 0"),
        ("linear", 0, 64, r"global batch size must be >= 1, got 0"),
    ],
    ids=["mode", "negative-base", "zero-base", "zero-global"],
)
def test_lr_scale_factor_rejects_bad_values(mode, global_batch, base, message):
    with pytest.raises(ConfigError, match=message):
        lr_scale_factor(mode, global_batch, base)
