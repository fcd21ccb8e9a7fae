"""Shipped configs composed by name (`lit_dl://name`, or a name with no such local file), also from a wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from lit_dl.cli import LitDLCLI
from lit_dl.cli.config_files import resolve_config_arguments, resolve_config_path, shipped_configs
from lit_dl.errors import ConfigError
from tests.conftest import CONFIGS, HANG_TIMEOUT, REPO

SHIPPED = sorted(str(p.relative_to(CONFIGS)) for p in CONFIGS.rglob("*.yaml"))


def test_shipped_folder_holds_the_repository_configs():
    assert sorted(str(p.relative_to(shipped_configs())) for p in shipped_configs().rglob("*.yaml")) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_resolves_by_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a project folder without configs/
    expected = (shipped_configs() / name).resolve()
    for given in (f"lit_dl://{name}", name, f"configs/{name}"):
        assert Path(resolve_config_path(given)).resolve() == expected


def test_a_local_file_wins_and_unknown_names_are_left_to_the_parser(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "optimizer").mkdir()
    (tmp_path / "optimizer" / "sgd.yaml").write_text("model: {}\n")
    assert resolve_config_path("optimizer/sgd.yaml") == "optimizer/sgd.yaml"
    assert resolve_config_path("optimizer/nope.yaml") == "optimizer/nope.yaml"
    inline = "{trainer: {max_epochs: 3}}"  # a config given inline is left alone
    assert resolve_config_arguments(["--config", inline]) == ["--config", inline]
    assert resolve_config_arguments(
        ["fit", "-c", "lit_dl://optimizer/adam.yaml", "--config=optimizer/sgd.yaml"]
    ) == [
        "fit",
        "-c",
        str(shipped_configs() / "optimizer" / "adam.yaml"),
        "--config=optimizer/sgd.yaml",
    ]


BUNDLE = [
    "AtomicCheckpoint",
    "ExactResume",
    "NonFiniteGuard",
    "EpochSummary",
    "LearningRateMonitor",
    "WeightInit",
]


def configured_callbacks(cli: LitDLCLI) -> list[str]:
    return [c["class_path"].rsplit(".", 1)[-1] for c in cli.config["trainer"]["callbacks"]]


def test_shipped_names_work_inside_a_user_config_and_as_option_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        "model:\n  class_path: lit_dl.models.MLPClassifier\n  init_args: {num_classes: 10, in_features: 64}\n"
        "data: {class_path: lit_dl.data.DigitsDataModule}\n"
        "trainer:\n  callbacks: lit_dl://callbacks/default.yaml\n"
    )
    in_file = LitDLCLI(args=["--config", str(mine)], run=False)
    assert configured_callbacks(in_file) == BUNDLE
    for option in (["--trainer.callbacks", "lit_dl://callbacks/default.yaml"],
                   ["--trainer.callbacks=lit_dl://callbacks/default.yaml"]):  # fmt: skip
        on_command_line = LitDLCLI(args=["--config", str(mine), "--trainer.callbacks=[]", *option], run=False)
        assert configured_callbacks(on_command_line) == BUNDLE
    mine.write_text(mine.read_text().replace("default.yaml", "nope.yaml"))
    with pytest.raises(
        ConfigError, match=r"^no shipped config 'lit_dl://callbacks/nope.yaml'; shipped configs: "
    ):
        LitDLCLI(args=["--config", str(mine)], run=False)


def test_shipped_configs_compose_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = LitDLCLI(
        args=[
            "--config",
            "lit_dl://digits_mlp.yaml",
            "--config",
            "optimizer/sgd.yaml",
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert cli.config.model.init_args.optimizer.class_path == "torch.optim.SGD"
    # `callbacks: callbacks/default_ema.yaml` inside the shipped recipe resolves next to it
    assert {type(c).__name__ for c in cli.trainer.callbacks} >= {
        "AtomicCheckpoint",
        "LearningRateMonitor",
        "WeightInit",
    }


def test_the_wheel_ships_the_configs_and_resolves_them(tmp_path):
    pytest.importorskip("setuptools")
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            "tests",
            "build",
            "*.egg-info",
            "lightning_logs",
            "__pycache__",
            ".venv",
            ".mypy_cache",
            ".ruff_cache",
            "site",  # a checkout's environment, caches, built docs
        ),
    )
    wheels = tmp_path / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(source),
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(wheels),
    ]
    subprocess.run(build, check=True, capture_output=True, timeout=HANG_TIMEOUT)
    (wheel,) = wheels.glob("lit_dl-*.whl")
    installed = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(installed)
    assert (
        sorted(n.removeprefix("lit_dl/configs/") for n in names if n.startswith("lit_dl/configs/")) == SHIPPED
    )
    probe = "from lit_dl.cli.config_files import resolve_config_path as r; print(r('optimizer/sgd.yaml'))"
    env = {**os.environ, "PYTHONPATH": str(installed)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=HANG_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()) == installed / "lit_dl" / "configs" / "optimizer" / "sgd.yaml"
