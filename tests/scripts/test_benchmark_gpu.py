"""scripts/benchmark_gpu.py without CUDA: it says so, runs the tiny CPU smoke version and exits 0."""

import sys

import pytest
import torch

from tests.conftest import load_script

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def test_without_cuda_the_benchmark_runs_a_cpu_smoke_run(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    module = load_script("benchmark_gpu")
    monkeypatch.setattr(sys, "argv", ["benchmark_gpu.py"])
    assert module.main() is None  # exit status 0
    out = capsys.readouterr().out
    assert "no CUDA device: running a tiny CPU smoke run" in out
    for name in ("hand-written eager", "shipped recipe", "fast recipe"):
        assert f"{name}" in out and "images/s" in out
    assert "ratio fast / hand-written (eager): " in out and "ratio fast / shipped: " in out
    for name in ("hand-written eager", "shipped recipe", "fast recipe"):  # 1 warmup + 2 timed steps
        line = out.split(f"  {name} #1: ")[1].splitlines()[0]
        assert line.startswith("step ms p50/p90/max: host ") and ", gpu" not in line
        slowest = line.split("; slowest (step: host gc ms) ")[1].split(", ")
        assert sorted(step.split(":")[0] for step in slowest) == ["1", "2"]


def test_the_step_trace_reports_each_steps_clocks_and_names_the_slowest(monkeypatch):
    module = load_script("benchmark_gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    clock = module.GcClock()
    trace = module.StepTrace(clock, first_step=20)
    ticks = iter([1.0, 1.010, 1.020, 1.050])  # steps of 10, 10 and 30 ms
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(ticks))
    for gc_seconds in (0.0, 0.0, 0.0, 0.025):  # a 25 ms collection inside the third step
        clock.seconds = gc_seconds
        trace.mark()
    assert trace.summary() == (
        "step ms p50/p90/max: host 10.00/30.00/30.00; slowest (step: host gc ms) "
        "22: 30.0 gc 25.0, 20: 10.0 gc 0.0, 21: 10.0 gc 0.0"
    )
    assert module.StepTrace(clock, first_step=0).summary() == ""  # no timed step


def test_the_gc_clock_counts_collections_between_start_and_stop():
    module = load_script("benchmark_gpu")
    import gc

    clock = module.GcClock()
    gc.collect()  # before start: not counted
    clock.start()
    gc.collect()
    gc.collect()
    clock.stop()
    gc.collect()  # after stop: not counted
    assert clock.collections == 2 and clock.seconds > 0
    assert clock._callback not in gc.callbacks


def test_the_sync_check_runs_the_fast_recipe_with_the_progress_bar_and_reports_its_speed(monkeypatch, capsys):
    # The CUDA path's bookkeeping, with the recipe run itself stubbed (this machine has no GPU).
    module = load_script("benchmark_gpu")
    calls = []

    def run_recipe(config, root, data, args, extra, **options):
        calls.append((config, extra, options))
        return module.Run(1234.0, 0.0, 0)

    monkeypatch.setattr(module, "run_recipe", run_recipe)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "fake GPU")
    argv = ["benchmark_gpu.py", "--sync-check", "--images", "10000", "--warmup", "1", "--steps", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    assert module.main() is None
    ((config, extra, options),) = calls
    assert config == "cifar10_resnet18_fast.yaml" and options == {"sync_check": True}
    assert extra[-1] == "--trainer.enable_progress_bar=true"
    assert (
        "sync check passed: 2 fast-recipe steps without a host synchronisation (1234 images/s)"
        in capsys.readouterr().out
    )


def test_contestants_run_in_a_rotated_order_each_after_a_fresh_start():
    module = load_script("benchmark_gpu")
    calls = []

    def contestant(name, speed):
        def run():
            calls.append(name)
            return module.Run(speed, 0.0, 0)

        return run

    contestants = {"a": contestant("a", 1.0), "b": contestant("b", 2.0), "c": contestant("c", 3.0)}
    results = module.run_contestants(contestants, 4, lambda: calls.append("fresh"))
    runs = [name for name in calls if name != "fresh"]
    assert runs == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert calls == [x for name in runs for x in ("fresh", name)]
    assert {name: [r.images_per_s for r in v] for name, v in results.items()} == {
        "a": [1.0] * 4,
        "b": [2.0] * 4,
        "c": [3.0] * 4,
    }


def test_a_fresh_start_collects_the_garbage_and_turns_cudnn_autotuning_off():
    module = load_script("benchmark_gpu")
    import gc
    import weakref

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a  # a reference cycle, as a Trainer's: refcounting alone never frees it
    alive = weakref.ref(a)
    del a, b
    torch.backends.cudnn.benchmark = True
    gc.disable()
    try:
        assert alive() is not None
        module.fresh_start(cuda=False)
        assert alive() is None
    finally:
        gc.enable()
    assert torch.backends.cudnn.benchmark is False


def test_the_step_timer_collects_garbage_once_just_before_its_timed_steps(monkeypatch):
    module = load_script("benchmark_gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    collected = []
    monkeypatch.setattr(module.gc, "collect", lambda *a: collected.append(a) or 0)
    timer = module.StepTimer(warmup=2, steps=3)
    trainer = type("FakeTrainer", (), {"global_step": 0, "should_stop": False})()
    batch = (torch.zeros(4, 3, 2, 2), torch.zeros(4))
    for step in range(6):
        trainer.global_step = step
        timer.on_train_batch_start(trainer, None, batch, step)
        assert len(collected) == (1 if step >= 2 else 0)  # at the first timed step, not again
        trainer.global_step = step + 1
        timer.on_train_batch_end(trainer, None, None, batch, step)
        if trainer.should_stop:
            break
    assert step == 4 and timer.batch_size == 4 and len(timer.trace.host) == 4  # 3 timed steps + the end
