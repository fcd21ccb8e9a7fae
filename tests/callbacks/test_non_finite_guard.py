"""NonFiniteGuard: a diverging run stops at its first non-finite step, exits 1 with one line, and the
checkpoint before it is intact and finite."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

from lit_dl.callbacks import NonFiniteGuard
from lit_dl.data.host_reads import HostCopy
from lit_dl.errors import ConfigError, NonFiniteError


def diverging_config(tmp_path: Path, check_every_n_steps: int) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [
                {
                    "class_path": "lit_dl.callbacks.AtomicCheckpoint",
                    "init_args": {"every_n_train_steps": 1, "save_top_k": -1, "save_last": True},
                },
                {
                    "class_path": "lit_dl.callbacks.NonFiniteGuard",
                    "init_args": {"check_every_n_steps": check_every_n_steps},
                },
                {
                    "class_path": "tests.probe_callbacks.FirstNonFiniteLoss",
                    "init_args": {"record": str(tmp_path / "first_bad_step")},
                },
            ],
        },
        "model": {
            "class_path": "lit_dl.models.MLPClassifier",
            "init_args": {
                "num_classes": 3,
                "in_features": 16,
                "hidden_sizes": [16],
                "norm": "none",
                # an absurd learning rate: the loss overflows within a few steps
                "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 1.0e12}},
            },
        },
        "data": {
            "class_path": "lit_dl.data.SyntheticClassificationDataModule",
            "init_args": {"num_classes": 3, "num_features": 16, "num_train": 96, "batch_size": 16},
        },
        "test_after_fit": False,
    }
    path = tmp_path / "diverge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("cadence", [1, 4], ids=["check_every_step", "check_every_4_steps"])
def test_absurd_lr_stops_at_the_first_non_finite_step_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, cadence
) -> None:
    from lit_dl.cli import main

    config = diverging_config(tmp_path, cadence)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path)])
    assert exit_info.value.code == 1
    first_bad = int((tmp_path / "first_bad_step").read_text())
    assert first_bad >= 1  # the first steps are finite: there is a good checkpoint to keep
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("lit-dl: error:")]
    assert len(lines) == 1
    match = re.fullmatch(
        r"lit-dl: error: non-finite (training loss|gradient norm) (nan|inf|-inf) at step (\d+) "
        r"\(found at step (\d+)\); last good checkpoint: (.+)",
        lines[0],
    )
    assert match, lines[0]
    assert int(match[3]) == first_bad or (match[1] == "gradient norm" and int(match[3]) == first_bad - 1)
    assert int(match[3]) <= int(match[4]) < int(match[3]) + cadence + 1
    checkpoints = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    last_good = Path(match[5])
    assert last_good.parent == checkpoints
    # nothing was written from the bad step on: every checkpoint on disk is from before it
    steps = [int(re.search(r"step=(\d+)", p.name)[1]) for p in checkpoints.glob("*step=*.ckpt")]
    assert max(steps) == int(match[3])
    state = torch.load(last_good, weights_only=True)
    assert state["global_step"] == int(match[3])
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values())
    assert not list(checkpoints.glob("*.tmp"))


def test_check_every_n_steps_must_be_positive() -> None:
    with pytest.raises(ConfigError, match=r"check_every_n_steps must be >= 1, got 0"):
        NonFiniteGuard(check_every_n_steps=0)


def test_total_gradient_norm_is_torchs_get_total_norm() -> None:
    from lit_dl.callbacks.non_finite import _total_norm

    torch.manual_seed(0)
    grads = [torch.randn(16, 8), torch.randn(16), torch.randn(3, 16)]
    assert torch.equal(_total_norm(grads), torch.nn.utils.get_total_norm(grads))
    mixed = [grads[0], grads[1].double()]  # another dtype: torch's grouped path
    assert torch.equal(_total_norm(mixed), torch.nn.utils.get_total_norm(mixed))
    for bad in (float("nan"), float("inf")):
        poisoned = [grads[0], torch.full((4,), bad)]
        assert not torch.isfinite(_total_norm(poisoned))


def test_a_periodic_check_reads_only_values_that_reached_the_host_and_an_epoch_end_check_waits(monkeypatch):
    guard = NonFiniteGuard(check_every_n_steps=1)
    guard.on_train_start(None, None)
    trainer = SimpleNamespace(global_step=3, checkpoint_callbacks=[])
    arrived = False
    monkeypatch.setattr(HostCopy, "ready", lambda self: arrived)  # a GPU copy still on its way
    guard._record(torch.tensor(1.0), step=1, kind=0)
    guard._record(torch.tensor(float("inf")), step=2, kind=1)
    guard.check(trainer, wait=False)  # nothing has arrived: no wait, no error yet
    arrived = True
    with pytest.raises(
        NonFiniteError, match=r"^non-finite gradient norm inf at step 2 \(found at step 3\); last good"
    ):
        guard.check(trainer, wait=False)
    guard.check(trainer)  # reported once: the hooks that run while the error unwinds stay quiet

    waiting = NonFiniteGuard(check_every_n_steps=1)
    waiting.on_train_start(None, None)
    arrived = False
    waiting._record(torch.tensor(float("nan")), step=5, kind=0)
    waiting.check(trainer, wait=False)
    with pytest.raises(NonFiniteError, match=r"^non-finite training loss nan at step 5 "):
        waiting.check(trainer)  # epoch end / checkpoint: reads every copy, arrived or not


def test_the_guard_follows_parameters_added_to_the_optimizer():
    from lit_dl.callbacks.non_finite import _total_norm

    guard = NonFiniteGuard()
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([a, b], lr=0.1)
    params, uniform = guard._parameters(optimizer)
    assert params == [a, b] and uniform
    c = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))  # unfrozen later, another dtype
    optimizer.add_param_group({"params": [c]})
    params, uniform = guard._parameters(optimizer)
    assert params == [a, b, c] and not uniform
    for p in params:
        p.grad = torch.full_like(p, 2.0)
    expected = torch.nn.utils.get_total_norm([p.grad for p in params])
    assert torch.equal(_total_norm([p.grad for p in params], uniform), expected)


def test_recorded_values_of_any_float_dtype_and_one_element_shape_stack_into_floats() -> None:
    from lit_dl.callbacks.non_finite import _stack_scalars

    scalars = [torch.tensor(1.5), torch.tensor(2.0, dtype=torch.bfloat16), torch.tensor(float("nan"))]
    stacked = _stack_scalars(scalars)
    assert stacked.dtype == torch.float32
    assert torch.equal(stacked[:2], torch.tensor([1.5, 2.0])) and torch.isnan(stacked[2])
    mixed = _stack_scalars([torch.tensor([3.0]), torch.tensor(4.0, dtype=torch.float64)])
    assert mixed.dtype == torch.float32 and torch.equal(mixed, torch.tensor([3.0, 4.0]))
