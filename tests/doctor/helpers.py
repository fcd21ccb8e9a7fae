"""Running `lit-dl doctor` in-process and reading its JSON report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lit_dl.cli import main

BROKEN = Path(__file__).parent / "broken"


def run_doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """``lit-dl doctor ... --format json``: (exit status, report)."""
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", *args, "--format", "json"])
    out = capsys.readouterr().out
    return exit_info.value.code, json.loads(out)


def by_check(report: dict) -> dict[str, dict]:
    return {f["check"]: f for f in report["findings"]}
