"""scripts/benchmark_gpu.py without CUDA: it says so, runs the tiny CPU smoke version and exits 0."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def test_without_cuda_the_benchmark_runs_a_cpu_smoke_run(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = importlib.util.spec_from_file_location("benchmark_gpu", ROOT / "scripts" / "benchmark_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["benchmark_gpu.py"])
    assert module.main() is None  # exit status 0
    out = capsys.readouterr().out
    assert "no CUDA device: running a tiny CPU smoke run" in out
    for name in ("hand-written eager", "shipped recipe", "fast recipe"):
        assert f"{name}" in out and "images/s" in out
    assert "ratio fast / hand-written (eager): " in out and "ratio fast / shipped: " in out


def test_the_gc_clock_counts_collections_between_start_and_stop():
    spec = importlib.util.spec_from_file_location("benchmark_gpu", ROOT / "scripts" / "benchmark_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
    spec = importlib.util.spec_from_file_location("benchmark_gpu", ROOT / "scripts" / "benchmark_gpu.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
