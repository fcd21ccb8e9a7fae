"""scripts/benchmark_checkpoint.py: both settings run and the stall is reported."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_checkpoint_benchmark_reports_both_settings(monkeypatch, capsys):
    spec = importlib.util.spec_from_file_location(
        "benchmark_checkpoint", ROOT / "scripts" / "benchmark_checkpoint.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", ["benchmark_checkpoint.py", "--epochs", "2", "--repeats", "1"])
    module.main()
    out = capsys.readouterr().out
    assert "digits_mlp.yaml, 2 epochs, 1 repeats (median)" in out
    assert "async_write=False:" in out and "async_write=True :" in out
    assert out.count(", 2 files") == 2  # best and last.ckpt, both ways
    assert "ratio of the stall, async / sync: " in out
