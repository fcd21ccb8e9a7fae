"""Each doctor check on a small model built in the test: the pitfall gives the right status and fix."""

from __future__ import annotations

import math
import time

import pytest
import torch

from lit_dl.doctor import Context, Finding, check_overfit_batch, check_schedule_vs_run, exit_status, lr_curve
from lit_dl.doctor.batch import (
    check_dead_relu,
    check_gradient_ratio,
    check_host_syncs,
    check_init_loss,
    check_labels,
    check_saturation,
    check_softmax_output,
    input_bound_finding,
    record_batch,
    time_steps,
)
from lit_dl.doctor.findings import format_json, format_table
from lit_dl.doctor.static import check_decay_on_norms, check_init_vs_activation, check_params_in_optimizer
from lit_dl.models import MLPClassifier, SequenceClassifier
from lit_dl.optim import WarmupCosineLR
from tests.doctor.broken_models import SoftmaxHeadClassifier


def mlp(**kwargs) -> MLPClassifier:
    torch.manual_seed(0)
    defaults = {"num_classes": 3, "in_features": 8, "hidden_sizes": [16, 16]}
    return MLPClassifier(**(defaults | kwargs))


def batch(n: int = 32, features: int = 8, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(n, features, generator=gen), torch.arange(n) % classes


def batch_finding(check, task, data=None) -> Finding:
    return check(Context.from_task(task), record_batch(task, data or batch()))


def test_params_outside_the_optimizer_are_an_error():
    task = mlp()
    optimizer = torch.optim.SGD(task.backbone.head.parameters(), lr=0.1)
    finding = check_params_in_optimizer(Context(task, None, optimizer, None))
    assert finding.status == "error" and "backbone.features.1.0.weight" in finding.found
    assert check_params_in_optimizer(Context.from_task(task)).status == "ok"


def test_decayed_embeddings_point_to_decay_embeddings_false():
    task = SequenceClassifier(num_classes=2, vocab_size=10, decay_embeddings=True)
    finding = check_decay_on_norms(Context.from_task(task))
    assert finding.status == "warn" and "embedding" in finding.found
    assert finding.fix.startswith("--model.init_args.decay_embeddings false")
    assert (
        check_decay_on_norms(Context.from_task(SequenceClassifier(num_classes=2, vocab_size=10))).status
        == "ok"
    )


def test_forced_he_init_under_tanh_is_named():
    from lit_dl.callbacks import WeightInit

    task = mlp(activation="tanh", norm="none")
    ctx = Context.from_task(task, weight_init=WeightInit(scheme="kaiming_normal"))
    finding = check_init_vs_activation(ctx)
    assert finding.status == "warn" and "kaiming_normal -> Tanh" in finding.found
    ctx.weight_init = WeightInit(scheme="auto")
    assert check_init_vs_activation(ctx).status == "ok"


def test_loss_at_init_far_from_log_classes_warns():
    task = mlp()
    assert batch_finding(check_init_loss, task).status == "ok"
    with torch.no_grad():
        task.backbone.head.weight.mul_(100)
    finding = batch_finding(check_init_loss, task)
    assert finding.status == "warn" and f"ln(3) = {math.log(3):.3f}" in finding.found


def test_dead_relu_units_are_counted():
    task = mlp(norm="none")
    with torch.no_grad():
        task.backbone.features[1][0].bias.fill_(-100.0)
    finding = batch_finding(check_dead_relu, task)
    assert finding.status == "warn" and finding.data["backbone.features.1.1"] == 1.0


def test_saturated_sigmoid_units_warn():
    task = mlp(activation="sigmoid", norm="none")
    assert batch_finding(check_saturation, task).status == "ok"
    with torch.no_grad():
        task.backbone.features[1][0].weight.mul_(50)
    finding = batch_finding(check_saturation, task)
    assert finding.status == "warn" and "backbone.features.1.1" in finding.found


def test_vanishing_gradient_through_deep_sigmoid_stack():
    finding = batch_finding(
        check_gradient_ratio, mlp(activation="sigmoid", norm="none", hidden_sizes=[16] * 6)
    )
    assert finding.status == "warn" and finding.found.startswith("vanishing")
    assert finding.fix == "--model.init_args.norm before (BatchNorm before each activation)"
    assert batch_finding(check_gradient_ratio, mlp()).status == "ok"


def test_labels_outside_num_classes_are_an_error():
    x, _ = batch()
    finding = batch_finding(check_labels, mlp(), (x, torch.arange(32) % 5))
    assert finding.status == "error" and finding.fix == "--model.init_args.num_classes 5"


def test_probabilities_as_outputs_are_an_error():
    task = SoftmaxHeadClassifier(in_features=8, num_classes=3)
    assert batch_finding(check_softmax_output, task).status == "error"
    assert batch_finding(check_softmax_output, mlp()).status == "ok"


class SlowLoader:
    def __init__(self, delay: float) -> None:
        self.delay = delay

    def __iter__(self):
        for _ in range(5):
            time.sleep(self.delay)
            yield batch()


def test_time_steps_measures_the_loader_and_the_step():
    load, compute = time_steps(mlp(), SlowLoader(0.2), torch.device("cpu"))
    assert load >= 0.2 and 0 < compute


class Workers:
    num_workers = 3


def test_input_bound_when_loading_is_slower_than_the_step():
    cpu = torch.device("cpu")
    finding = input_bound_finding(0.02, 0.01, cpu, Workers())
    assert finding.status == "warn" and finding.fix == "--data.init_args.num_workers 6"
    assert "loading a batch takes 20.00 ms, a training step 10.00 ms (on cpu)" in finding.found
    assert input_bound_finding(0.02, 0.01, cpu).fix.startswith("keep the data in memory")
    assert input_bound_finding(0.01, 0.02, cpu).status == "ok"
    assert input_bound_finding(0.012, 0.01, cpu).status == "ok"  # within the margin: noise


def test_host_syncs_are_skipped_without_cuda():
    finding = check_host_syncs(Context.from_task(mlp()), batch(), torch.device("cpu"))
    assert finding.status == "skip" and "CUDA" in finding.found


def test_overfit_one_batch():
    ok = check_overfit_batch(Context.from_task(mlp(optimizer=torch.optim.Adam)), batch(), steps=100)
    assert ok.status == "ok" and ok.data["accuracy"] == 1.0
    frozen = mlp(optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    stuck = check_overfit_batch(Context.from_task(frozen), batch(), steps=10)
    assert stuck.status == "error" and stuck.data["steps"] == 10


class RunOf(Context):
    """A Context whose run length is given (the check reads nothing else from the Trainer)."""

    length: tuple[float, str] = (30, "epochs")

    def run_length(self):
        return self.length


def schedule_finding(factory, length=(30, "epochs")) -> Finding:
    task = mlp()
    optimizer = torch.optim.SGD(task.parameters(), lr=0.1)
    ctx = RunOf(task, None, optimizer, factory(optimizer))
    ctx.length = length
    return check_schedule_vs_run(ctx)


@pytest.mark.parametrize(
    ("name", "factory", "status", "words"),
    [
        (
            "cosine_equal",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=30),
            "ok",
            "spans the run",
        ),
        (
            "cosine_short",
            lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10),
            "error",
            "climbs back",
        ),
        ("cosine_long", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=200), "warn", "longer"),
        (
            "warmup_floor",
            lambda o: WarmupCosineLR(o, warmup_steps=2, total_steps=10),
            "warn",
            "last 20 epochs",
        ),
        (
            "onecycle_short",
            lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=20),
            "error",
            "raises",
        ),
        ("step_decay", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=10), "ok", "spans the run"),
        ("exp_slow", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.999), "warn", "still decaying"),
        ("exp_decay", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.95), "ok", "spans the run"),
        ("step_after_run", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=100), "warn", "longer"),
        (
            "warmup_only",
            lambda o: torch.optim.lr_scheduler.LinearLR(o, 0.1, total_iters=5),
            "ok",
            "never lowers",
        ),
        ("plateau", lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o), "skip", "monitored metric"),
    ],
)
def test_schedule_vs_run(name, factory, status, words):
    finding = schedule_finding(factory)
    assert finding.status == status, finding
    assert words in finding.found
    if status != "ok" and status != "skip":
        assert finding.fix.endswith("30 (the run's length in epochs)") or "30 epochs" in finding.fix


def test_schedule_is_compared_in_the_schedulers_unit():
    # 465 optimizer steps = 15 epochs x 31 batches: the OneCycle of configs/seq_transformer.yaml
    onecycle = lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.1, total_steps=465)  # noqa: E731
    assert schedule_finding(onecycle, (465, "optimizer steps")).status == "ok"
    assert schedule_finding(onecycle, (15, "epochs")).status == "warn"


def test_lr_curve_leaves_the_scheduler_alone():
    task = mlp()
    optimizer = torch.optim.SGD(task.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    lrs, err = lr_curve(sched, 4)
    assert err is None and lrs[0] == 0.1 and lrs[4] == pytest.approx(0.0, abs=1e-12)
    assert sched.last_epoch == 0 and optimizer.param_groups[0]["lr"] == 0.1


def test_table_json_and_exit_status():
    findings = [
        Finding("a", "ok", "fine"),
        Finding("b", "warn", "odd", "--x 1"),
        Finding("c", "error", "bad", "--y 2"),
    ]
    table = format_table(findings)
    assert "fix: --x 1" in table and table.splitlines()[-1] == "1 ok, 1 warn, 1 error, 0 skip"
    assert '"exit_status": 1' in format_json(findings)
    assert exit_status(findings) == 1 and exit_status(findings[:2]) == 0
    with pytest.raises(ValueError, match="status must be one of ok, warn, error, skip, got 'bad'"):
        Finding("x", "bad", "")  # type: ignore[arg-type]
