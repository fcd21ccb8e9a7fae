"""The edges of the CLI's own checks: what they let through next to what they refuse (the refusals
themselves are rows of tests/cli/test_cli_bad_input.py)."""

from __future__ import annotations

import os

import pytest

from lit_dl.cli.checks import check_cpu_processes, check_run_folder, check_seed_everything, usable_cpu_cores
from lit_dl.errors import ConfigError


def test_as_many_cpu_processes_as_cores_are_allowed_and_one_more_is_not():
    cores = usable_cpu_cores()
    check_cpu_processes(cores, True, cores)
    check_cpu_processes(cores + 1, False, cores + 1)  # GPUs: Lightning checks their count
    with pytest.raises(ConfigError, match=f"give at most {cores} "):
        check_cpu_processes(cores + 1, True, cores + 1)


@pytest.mark.parametrize("env", ["0", "4294967295", " 7"], ids=["zero", "largest", "padded"])
def test_a_pl_global_seed_that_is_a_seed_is_accepted(monkeypatch, env):
    monkeypatch.setenv("PL_GLOBAL_SEED", env)
    check_seed_everything(True)
    check_seed_everything(False)


@pytest.mark.parametrize("env", ["4294967296", "1.5", ""], ids=["above-2-32", "float", "empty"])
def test_a_pl_global_seed_that_is_no_seed_is_refused_unless_an_int_seed_replaces_it(monkeypatch, env):
    monkeypatch.setenv("PL_GLOBAL_SEED", env)
    check_seed_everything(3)  # Lightning sets PL_GLOBAL_SEED from the config's seed
    with pytest.raises(ConfigError, match=f"PL_GLOBAL_SEED={env!r} is not a seed"):
        check_seed_everything(True)


def test_the_longest_folder_name_the_file_system_holds_is_allowed(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    assert check_run_folder(tmp_path / ("x" * name_max) / "runs") == [
        tmp_path / ("x" * name_max) / "runs",
        tmp_path / ("x" * name_max),
    ]
    with pytest.raises(ConfigError, match=f"has a folder name of {name_max + 1} bytes"):
        check_run_folder(tmp_path / ("x" * (name_max + 1)) / "runs")
    assert list(tmp_path.iterdir()) == []
