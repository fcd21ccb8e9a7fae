"""scripts/benchmark_overhead.py: every contestant runs, the ratios and the per-hook account print."""

import re
import sys
from pathlib import Path

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def load():
    return load_script("benchmark_overhead")  # the naive contestant's class path names this module


def test_the_overhead_benchmark_prints_every_contestant_the_ratios_and_the_hook_times(monkeypatch, capsys):
    module = load()
    # two of the breakdown's contestants (a callback and the profiler swap) keep the test short; that
    # every component removes what it names is checked without training, below
    monkeypatch.setattr(module, "BREAKDOWN", ("EpochSummary", "NullProfiler"))
    monkeypatch.setattr(
        sys,
        "argv",
        ["benchmark_overhead.py", "--epochs", "1", "--repeats", "1", "--hook-times", "--breakdown"],
    )
    module.main()
    out = capsys.readouterr().out
    for name in ("hand-written loop", "lit_dl recipe", "Lightning barebones", "naive Lightning"):
        assert re.search(rf"^{name} +: \d+\.\d{{3}} s best", out, re.M), name
    assert re.search(r"^ratio lit_dl / barebones: \d+\.\d\dx$", out, re.M)
    assert re.search(r"^ratio lit_dl / barebones, medians: \d+\.\d\dx$", out, re.M)
    inside = dict(re.findall(r"^inside (.+?) *: (\d+\.\d{3}) s$", out, re.M))
    # the bundle's callbacks, the CLI's config saver and HPARAMS record, the task's validation metrics
    assert set(inside) == {
        "AtomicCheckpoint", "ExactResume", "NonFiniteGuard", "ExponentialWeightAveraging",
        "EpochSummary", "LearningRateMonitor",
        "WeightInit", "SaveRunConfig", "RunHparams", "task: validation metrics",
    }  # fmt: skip
    calls = int(re.search(r"^callback hook calls: (\d+) ", out, re.M).group(1))
    assert calls > 0 and calls % 9 == 0  # every hook call reaches each of the 9 callbacks
    contexts = re.search(
        r"^profiler contexts: (\d+), (\d+\.\d) us each with Lightning's PassThroughProfiler, "
        r"(\d+\.\d) us with NullProfiler: (-?\d+\.\d{3}) s saved$",
        out,
        re.M,
    ).group(1)
    assert int(contexts) > calls  # the module's and the strategy's hooks too
    costs = re.findall(r"^cost of (.+?) *: [+-]\d+\.\d{3} s", out, re.M)
    assert costs == ["EpochSummary", "NullProfiler"]


def _components(cli) -> tuple:
    return (
        sorted(type(c).__name__ for c in cli.trainer.callbacks),
        len(cli.trainer.loggers),
        type(cli.trainer.profiler).__name__,
        type(cli.model.task_logging).__name__,
    )


def test_every_breakdown_component_is_in_the_recipe_and_removing_it_changes_only_that(tmp_path):
    module = load()
    assert module.BREAKDOWN[-1] == "NullProfiler"
    recipe = _components(module.build(1, str(tmp_path), False, []))
    for component in module.BREAKDOWN:
        callbacks, loggers, profiler, logging = _components(
            module._without(component, module.build(1, str(tmp_path), False, []))
        )
        if component == "logger + LearningRateMonitor":
            assert (loggers, callbacks) == (0, [c for c in recipe[0] if c != "LearningRateMonitor"])
        elif component == "train-loss window":
            assert logging != recipe[3] and callbacks == recipe[0]
        elif component == "NullProfiler":
            assert (profiler, recipe[2]) == ("PassThroughProfiler", "NullProfiler")
        else:
            assert component in recipe[0], component
            assert callbacks == [c for c in recipe[0] if c != component], component
            assert (loggers, profiler, logging) == recipe[1:], component


def test_the_breakdown_swaps_the_null_profiler_for_lightnings_default(tmp_path):
    from lightning.pytorch.profilers import PassThroughProfiler

    from lit_dl.callbacks.null_profiler import NullProfiler

    module = load()
    assert type(module.build(1, str(tmp_path), False, []).trainer.profiler) is NullProfiler
    swapped = module._without("NullProfiler", module.build(1, str(tmp_path), False, []))
    assert type(swapped.trainer.profiler) is PassThroughProfiler


def test_each_repeat_runs_the_contestants_in_a_rotated_order():
    module = load()
    names = ("hand", "lit", "bare")
    assert [module.rotated(names, r) for r in range(4)] == [
        ["hand", "lit", "bare"],
        ["lit", "bare", "hand"],
        ["bare", "hand", "lit"],
        ["hand", "lit", "bare"],
    ]
