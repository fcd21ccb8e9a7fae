"""Each doctor check on a small model built in the test: the pitfall gives the right status and fix."""

from __future__ import annotations

import math
import time
import traceback
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from lit_dl.doctor import Context, Finding, check_overfit_batch, check_schedule_vs_run, exit_status, lr_curve
from lit_dl.doctor.batch import (
    check_anomaly,
    check_dead_relu,
    check_gradient_ratio,
    check_host_syncs,
    check_init_loss,
    check_labels,
    check_saturation,
    check_softmax_output,
    input_bound_finding,
    record_batch,
    record_sync_sites,
    sync_site,
    time_steps,
)
from lit_dl.doctor.findings import format_json, format_table
from lit_dl.doctor.static import (
    check_decay_on_norms,
    check_dropout_before_batchnorm,
    check_init_vs_activation,
    check_params_in_optimizer,
    check_saturating_stack,
    check_softmax_head,
)
from lit_dl.models import MLPClassifier, SequenceClassifier
from lit_dl.nn import ACTIVATIONS, layers, register_activation
from lit_dl.optim import WarmupCosineLR
from tests.doctor.broken_models import (
    DecayEverythingClassifier,
    DropoutBeforeBNClassifier,
    InplaceClassifier,
    SoftmaxHeadClassifier,
)


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
    assert finding.fix == (
        "build the optimizer on the whole module's parameters (parameter_groups over the task), or set "
        "requires_grad=False on what should stay fixed"
    )
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
    assert finding.fix == "use WeightInit scheme auto (configs/callbacks/default.yaml)"
    ctx.weight_init = WeightInit(scheme="auto")
    assert check_init_vs_activation(ctx).status == "ok"


def test_loss_at_init_far_from_log_classes_warns():
    task = mlp()
    assert batch_finding(check_init_loss, task).status == "ok"
    with torch.no_grad():
        task.backbone.head.weight.mul_(100)
    finding = batch_finding(check_init_loss, task)
    assert finding.status == "warn" and f"ln(3) = {math.log(3):.3f}" in finding.found
    assert finding.fix == "scale the classifier head's init down (zero it, or xavier with a small gain)"


def test_dead_relu_units_are_counted():
    task = mlp(norm="none")
    with torch.no_grad():
        task.backbone.features[1][0].bias.fill_(-100.0)
    finding = batch_finding(check_dead_relu, task)
    assert finding.status == "warn" and finding.data["backbone.features.1.1"] == 1.0
    assert finding.fix == (
        "He init (--config configs/callbacks/weight_init.yaml), a smaller bias, or "
        "--model.init_args.activation leaky_relu"
    )


def test_saturated_sigmoid_units_warn():
    task = mlp(activation="sigmoid", norm="none")
    assert batch_finding(check_saturation, task).status == "ok"
    with torch.no_grad():
        task.backbone.features[1][0].weight.mul_(50)
    finding = batch_finding(check_saturation, task)
    assert finding.status == "warn" and "backbone.features.1.1" in finding.found
    assert finding.fix == SATURATION_FIX


SATURATION_FIX = "Xavier init for tanh/sigmoid (--config configs/callbacks/weight_init.yaml) or normalised inputs/norm layers"


class Bounded(nn.Module):
    """A project's own saturating activation, unknown to lit_dl until registered: a sigmoid stretched to (-2, 2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4 * torch.sigmoid(x) - 2


@pytest.fixture
def bounded_activation():
    register_activation("bounded_test", Bounded, init="xavier", nonlinearity="sigmoid")
    yield "bounded_test"
    del ACTIVATIONS["bounded_test"]
    del layers._ACTIVATION_KINDS[Bounded]


def test_a_registered_saturating_activation_is_seen_by_both_checks(bounded_activation):
    task = mlp(activation=bounded_activation, norm="none", hidden_sizes=[16] * 4)
    stack = check_saturating_stack(Context.from_task(task))
    assert stack.status == "warn"
    assert stack.data["run"] == [f"backbone.features.{i}.1 (Bounded)" for i in range(1, 5)]
    at_init = batch_finding(check_saturation, task)
    assert at_init.status == "ok" and sorted(at_init.data) == [
        f"backbone.features.{i}.1" for i in range(1, 5)
    ]
    with torch.no_grad():
        task.backbone.features[1][0].weight.mul_(50)
    finding = batch_finding(check_saturation, task)  # bounds read off the module: -2 and 2
    assert (
        finding.status == "warn" and "of the outputs of backbone.features.1.1 are saturated" in finding.found
    )
    assert finding.fix == SATURATION_FIX


def test_vanishing_gradient_through_deep_sigmoid_stack():
    finding = batch_finding(
        check_gradient_ratio, mlp(activation="sigmoid", norm="none", hidden_sizes=[16] * 6)
    )
    assert finding.status == "warn" and finding.found.startswith("vanishing")
    assert finding.fix == "--model.init_args.norm before (BatchNorm before each activation)"
    assert batch_finding(check_gradient_ratio, mlp()).status == "ok"


def test_exploding_gradient_through_scaled_up_layers():
    task = mlp(norm="none", hidden_sizes=[16] * 4)
    with (
        torch.no_grad()
    ):  # every layer after the first 10x too large: the backward signal grows on the way down
        for block in list(task.backbone.features)[2:]:
            block[0].weight.mul_(10)
        task.backbone.head.weight.mul_(10)
    finding = batch_finding(check_gradient_ratio, task)
    assert finding.status == "warn" and finding.data["ratio"] > 100
    assert finding.found.startswith(
        "exploding gradients: the loss gradient at the output of backbone.features.1.0 has "
    )
    assert finding.found.endswith("x the norm of the one at backbone.head")
    assert finding.fix == "--model.init_args.norm before (BatchNorm before each activation)"


def test_labels_outside_num_classes_are_an_error():
    x, _ = batch()
    finding = batch_finding(check_labels, mlp(), (x, torch.arange(32) % 5))
    assert finding.status == "error" and finding.fix == "--model.init_args.num_classes 5"


SOFTMAX_OUTPUT_FIX = "return logits: drop the softmax/log_softmax at the end of forward/build_backbone"


def test_probabilities_as_outputs_are_an_error():
    task = SoftmaxHeadClassifier(in_features=8, num_classes=3)
    finding = batch_finding(check_softmax_output, task)
    assert finding.status == "error" and finding.fix == SOFTMAX_OUTPUT_FIX
    assert "the network outputs probabilities (rows >= 0 summing to 1)" in finding.found
    assert batch_finding(check_softmax_output, mlp()).status == "ok"


def test_log_softmax_head_is_an_error_statically_and_on_a_batch():
    task = SoftmaxHeadClassifier(in_features=8, num_classes=3)
    task.backbone[-1] = nn.LogSoftmax(-1)
    head = check_softmax_head(Context.from_task(task))
    assert (head.status, head.data) == ("error", {"module": "backbone.3", "type": "LogSoftmax"})
    assert head.found.startswith("the network ends in LogSoftmax (backbone.3) but the loss is cross-entropy")
    assert (
        head.fix
        == "remove the final (Log)Softmax from build_backbone; predict_step already returns probabilities"
    )
    output = batch_finding(check_softmax_output, task)
    assert output.status == "error" and output.fix == SOFTMAX_OUTPUT_FIX
    assert "the network outputs log-probabilities (logsumexp 0)" in output.found


def test_l1_reaching_norms_and_biases_is_named():
    # no weight decay: only the L1 term, which follows the "decay" group of should_decay
    sgd = lambda p: torch.optim.SGD(p, lr=0.1)  # noqa: E731
    task = DecayEverythingClassifier(in_features=8, num_classes=3, l1=1e-4, optimizer=sgd)
    finding = check_decay_on_norms(Context.from_task(task))
    assert finding.status == "warn"
    assert finding.found == (
        "the L1 term reaches 3 norm, bias or embedding parameter(s) (backbone.1.weight, backbone.1.bias and 1 more)"
    )
    assert finding.data == {"l1": ["backbone.1.weight", "backbone.1.bias", "backbone.3.bias"]}
    assert finding.fix == (
        "DecayEverythingClassifier.should_decay returns True for them: let it fall back to super().should_decay "
        "for norms, biases and embeddings"
    )
    healthy = mlp(l1=1e-4, optimizer=sgd)
    assert check_decay_on_norms(Context.from_task(healthy)).status == "ok"


def test_dropout_feeding_batchnorm_is_named():
    finding = check_dropout_before_batchnorm(
        Context.from_task(DropoutBeforeBNClassifier(in_features=8, num_classes=3))
    )
    assert finding.status == "warn" and finding.data == {"pairs": ["backbone.2 (p=0.3) -> backbone.3"]}
    assert finding.fix == "move the dropout after the last BatchNorm (e.g. just before the classifier head)"


def test_inplace_op_on_a_saved_tensor_is_an_anomaly():
    finding = batch_finding(check_anomaly, InplaceClassifier(in_features=8, num_classes=3))
    assert finding.status == "error" and "inplace operation" in finding.found
    assert finding.fix == (
        "replace the in-place op (x += ..., relu_(...), inplace=True) on that tensor with an out-of-place one"
    )


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


def test_a_sync_is_reported_at_the_code_that_called_into_torch():
    torch_file = str(Path(torch.__file__).parent / "cuda" / "__init__.py")
    user = traceback.FrameSummary("/proj/train.py", 12, "step")
    inner = traceback.FrameSummary(torch_file, 1219, "synchronize")
    shown = traceback.FrameSummary(warnings.__file__, 101, "_showwarnmsg")
    torch_short = torch_file.rsplit("site-packages/", 1)[-1]
    assert (
        sync_site([user, inner, shown]) == f"/proj/train.py:12 in step, via {torch_short}:1219 in synchronize"
    )
    assert sync_site([user, shown]) == "/proj/train.py:12 in step"  # `.item()` in the user's own line
    assert sync_site([inner]) == f"{torch_short}:1219 in synchronize"


def test_sync_warnings_are_recorded_with_their_call_site_and_others_dropped():
    def step():
        warnings.warn("a deprecation", DeprecationWarning, stacklevel=1)
        warnings.warn("Synchronization debug mode is a prototype feature", stacklevel=1)  # not a sync
        warnings.warn(
            "called a synchronizing CUDA operation", stacklevel=1
        )  # the text of torch's sync-debug warning

    line = step.__code__.co_firstlineno + 3
    assert record_sync_sites(step) == [f"tests/doctor/test_checks.py:{line} in step"]
    assert record_sync_sites(step) == [f"tests/doctor/test_checks.py:{line} in step"]  # nothing suppressed


def test_overfit_one_batch():
    ok = check_overfit_batch(Context.from_task(mlp(optimizer=torch.optim.Adam)), batch(), steps=100)
    assert ok.status == "ok" and ok.data["accuracy"] == 1.0
    frozen = mlp(optimizer=lambda p: torch.optim.SGD(p, lr=0.0))
    stuck = check_overfit_batch(Context.from_task(frozen), batch(), steps=10)
    assert stuck.status == "error" and stuck.data["steps"] == 10
    assert stuck.fix == "check the LR (try lit-dl doctor --lr-find), frozen parameters and the loss"
    slow = mlp(optimizer=lambda p: torch.optim.SGD(p, lr=0.01))
    short = check_overfit_batch(Context.from_task(slow), batch(), steps=5)
    assert short.status == "warn" and short.found.endswith(": it does not fit one batch")
    assert short.fix == (
        "more steps (--overfit-steps 20), a larger LR, or less regularisation (dropout, weight decay)"
    )


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


def test_a_static_check_that_raises_is_skipped_with_the_reason(monkeypatch):
    from lit_dl.doctor import static

    def check_broken(ctx):
        raise AttributeError("no such thing")

    monkeypatch.setattr(static, "STATIC_CHECKS", (check_broken, static.check_softmax_head))
    broken, head = static.run_static_checks(Context.from_task(mlp()))
    assert (broken.check, broken.status, broken.found) == (
        "broken",
        "skip",
        "could not run: AttributeError: no such thing",
    )
    assert (head.check, head.status) == ("softmax_head", "ok")
