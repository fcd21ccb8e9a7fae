"""Shared fixtures: tiny synthetic runs through the real CLI, TensorBoard readers."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

# One intra-op thread per process: the suite runs a worker per core (pytest-xdist) and many tests start
# processes of their own, so torch's default of a thread per core oversubscribes the machine (its
# threads spin on each small op). Set before torch is imported here, in the workers (which inherit the
# variable) and in every process a test starts; a value set outside the suite wins.
os.environ.setdefault("OMP_NUM_THREADS", "1")
import pytest
import yaml

DOCUMENTED_THREADS = 2
"""Intra-op threads of the runs whose printed numbers the docs show and the tests pin (the default
recipe's test accuracy): torch's default on the 2-core machine they were measured on. The float
rounding of a reduction depends on how many threads share it, so a test that compares those numbers
runs its command with this many threads, whatever the machine's core count."""

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
HANG_TIMEOUT = 900
"""Seconds a test waits on a subprocess, a peer or a marker file: it only catches a hang, so it is
generous enough for a loaded 2-core machine; tests bound their work (epochs, batches) instead."""


def quiet_trainer(root: Path, **kwargs: Any) -> Any:
    """A plain Lightning ``Trainer`` on the CPU that writes nothing of its own into ``root`` (no logger,
    no checkpoint callback) and prints no progress bar or summary; ``kwargs`` add or override.
    (Lightning is imported here, not with this module: pytest's controller process needs none.)"""
    import lightning as L

    options: dict[str, Any] = {
        "default_root_dir": root,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    }
    return L.Trainer(**{**options, **kwargs})


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as the module ``name`` (registered in ``sys.modules``, so class
    paths that name it resolve), executed afresh on each call."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the TensorBoard event files of ``run_dir``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(run_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return series


@pytest.fixture(autouse=True)
def _cli_argv(monkeypatch):
    """Tests drive the CLI with explicit args; pytest's own argv must not look like CLI input."""
    monkeypatch.setattr("sys.argv", ["lit-dl"])


def tiny_recipe() -> dict:
    """The recipe of :func:`tiny_config` as a dict: small MLP on the synthetic data, two epochs."""
    return {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": 2,
            "accelerator": "cpu",
            "devices": 1,
            "log_every_n_steps": 2,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "callbacks": [
                {
                    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"monitor": "val/acc", "mode": "max"},
                }
            ],
        },
        "model": {
            "class_path": "lit_dl.models.MLPClassifier",
            "init_args": {
                "num_classes": 3,
                "in_features": 16,
                "hidden_sizes": [16],
                "optimizer": {"class_path": "torch.optim.AdamW", "init_args": {"lr": 0.01}},
            },
        },
        "data": {
            "class_path": "lit_dl.data.SyntheticClassificationDataModule",
            "init_args": {"num_classes": 3, "num_features": 16, "num_train": 96, "batch_size": 16},
        },
    }


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    """A complete, fast recipe: small MLP on the synthetic data, two epochs."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe()))
    return path


def pytest_sessionfinish(session, exitstatus):
    """Close progress bars that a failing-on-purpose run left open: tqdm would otherwise draw them at
    interpreter exit, after pytest's closing summary line."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.leave = False
        bar.close()
