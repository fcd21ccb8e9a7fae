"""Small models, data and trainers shared by the callback tests (imported as ``cb_helpers``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier
from tests.conftest import quiet_trainer


def tiny_data(num_train: int = 64, batch_size: int = 16) -> SyntheticClassificationDataModule:
    return SyntheticClassificationDataModule(
        num_classes=3, num_features=16, num_train=num_train, num_val=32, num_test=32, batch_size=batch_size
    )


def tiny_model(**kwargs) -> MLPClassifier:
    options = {
        "num_classes": 3,
        "in_features": 16,
        "hidden_sizes": [8, 8],
        "activation": "relu",
        "norm": "none",
    }
    options.update(kwargs)
    return MLPClassifier(**options)


def tiny_trainer(root: Path, callbacks: list, **kwargs) -> L.Trainer:
    """:func:`tests.conftest.quiet_trainer` with Lightning's default logger (``logger=None``), one short
    epoch on one device and ``callbacks``; ``kwargs`` add or override."""
    options = {
        "logger": None,
        "max_epochs": 1,
        "limit_train_batches": 2,
        "limit_val_batches": 1,
        "num_sanity_val_steps": 0,
        "devices": 1,
        "callbacks": callbacks,
    }
    return quiet_trainer(root, **{**options, **kwargs})


def read_events(run_dir: Path) -> EventAccumulator:
    """All scalars and images of the TensorBoard event files under ``run_dir``."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


# Lightning 2.6's pytree helper trips a FutureWarning of torch >= 2.10 on every fit; pyproject turns
# FutureWarning into errors. Test modules that fit set `pytestmark = LIGHTNING_PYTREE_WARNING`.
LIGHTNING_PYTREE_WARNING = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)
