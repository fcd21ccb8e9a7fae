"""scripts/benchmark_checkpoint.py: both settings run and the stall is reported."""

import sys
from pathlib import Path

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]


def test_the_checkpoint_benchmark_reports_both_settings(monkeypatch, capsys):
    module = load_script("benchmark_checkpoint")
    monkeypatch.setattr(sys, "argv", ["benchmark_checkpoint.py", "--epochs", "2", "--repeats", "1"])
    module.main()
    out = capsys.readouterr().out
    assert "digits_mlp.yaml, 2 epochs, 1 repeats (median)" in out
    assert "async_write=False:" in out and "async_write=True :" in out
    assert out.count(", 2 files") == 2  # best and last.ckpt, both ways
    assert "ratio of the stall, async / sync: " in out
