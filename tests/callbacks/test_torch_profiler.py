from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cb_helpers import LIGHTNING_PYTREE_WARNING, tiny_data, tiny_model, tiny_trainer

from lit_dl.callbacks import TorchProfiler
from lit_dl.cli import main
from lit_dl.errors import ConfigError

pytestmark = LIGHTNING_PYTREE_WARNING

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def check_trace_and_summary(profiler_dir: Path) -> tuple[list[Path], list[Path]]:
    traces = sorted(profiler_dir.glob("rank0.*.pt.trace.json"))
    summaries = sorted(profiler_dir.glob("rank0.*.key_averages.txt"))
    for trace in traces:
        events = json.loads(trace.read_text())["traceEvents"]
        assert any(e.get("name", "").startswith("ProfilerStep#") for e in events)
    for summary in summaries:
        text = summary.read_text()
        assert "Self CPU" in text and "aten::" in text
    return traces, summaries


def test_profiler_config_writes_a_chrome_trace_and_a_summary_into_the_run_folder(tmp_path) -> None:
    main(
        [
            "fit",
            "--config", str(CONFIGS / "digits_mlp.yaml"),
            "--config", str(CONFIGS / "callbacks" / "profiler.yaml"),
            "--trainer.default_root_dir", str(tmp_path),
            "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "6",
            "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false",
            "--test_after_fit", "false",
        ]
    )  # fmt: skip
    profiler_dir = tmp_path / "lightning_logs" / "version_0" / "profiler"
    traces, summaries = check_trace_and_summary(profiler_dir)
    # wait 1 + warmup 1 + active 3: the cycle ends at step 5.
    assert [p.name for p in traces] == ["rank0.5.pt.trace.json"]
    assert [p.name for p in summaries] == ["rank0.5.key_averages.txt"]


def test_active_window_longer_than_training_writes_what_it_has(tmp_path) -> None:
    profiler = TorchProfiler(wait=0, warmup=1, active=100)
    trainer = tiny_trainer(tmp_path, [profiler], limit_train_batches=4)
    trainer.fit(tiny_model(), datamodule=tiny_data())
    traces, summaries = check_trace_and_summary(Path(trainer.log_dir) / "profiler")
    assert [p.name for p in traces] == ["rank0.4.pt.trace.json"]
    assert len(summaries) == 1
    events = json.loads(traces[0].read_text())["traceEvents"]
    steps = {e["name"] for e in events if e.get("name", "").startswith("ProfilerStep#")}
    # Steps 1-3 recorded whole; #4 is the tail after the last batch, cut short by the end of training.
    assert steps == {"ProfilerStep#1", "ProfilerStep#2", "ProfilerStep#3", "ProfilerStep#4"}


def test_repeat_writes_one_trace_per_cycle_then_releases_the_profiler(tmp_path) -> None:
    profiler = TorchProfiler(wait=0, warmup=0, active=1, repeat=2, skip_first=1)
    trainer = tiny_trainer(tmp_path, [profiler], limit_train_batches=4)
    trainer.fit(tiny_model(), datamodule=tiny_data())
    assert profiler.total_steps == 3
    traces, _ = check_trace_and_summary(Path(trainer.log_dir) / "profiler")
    assert [p.name for p in traces] == ["rank0.2.pt.trace.json", "rank0.3.pt.trace.json"]
    assert profiler._profiler is None


def test_training_that_ends_before_the_first_active_step_writes_nothing(tmp_path, caplog) -> None:
    profiler = TorchProfiler(wait=5, warmup=1, active=1)
    trainer = tiny_trainer(tmp_path, [profiler], limit_train_batches=2)
    with caplog.at_level(logging.INFO):
        trainer.fit(tiny_model(), datamodule=tiny_data())
    assert list((Path(trainer.log_dir) / "profiler").iterdir()) == []
    assert "before the first active step (6); no trace was written" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"wait": -1}, r"TorchProfiler wait must be >= 0, got -1"),
        ({"warmup": -2}, r"TorchProfiler warmup must be >= 0, got -2"),
        ({"repeat": -1}, r"TorchProfiler repeat must be >= 0, got -1"),
        ({"skip_first": -1}, r"TorchProfiler skip_first must be >= 0, got -1"),
        ({"active": 0}, r"TorchProfiler active must be >= 1, got 0"),
        ({"row_limit": 0}, r"TorchProfiler row_limit must be >= 1, got 0"),
    ],
)
def test_bad_schedule_fails_at_construction(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TorchProfiler(**kwargs)
