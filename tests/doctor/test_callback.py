"""DoctorCallback: the static checks at the start of fit, warnings only."""

from __future__ import annotations

import lightning as L
import pytest

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.doctor import DoctorCallback
from lit_dl.models import MLPClassifier
from tests.doctor.broken_models import BiasBeforeBNClassifier

pytestmark = pytest.mark.filterwarnings(
    r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
)


def fit(model, tmp_path, callback):
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[callback],
    )
    data = SyntheticClassificationDataModule(num_classes=3, num_features=16, num_train=64, batch_size=16)
    trainer.fit(model, datamodule=data)


def test_warns_about_the_pitfall_at_fit_start(tmp_path):
    callback = DoctorCallback()
    with pytest.warns(
        UserWarning, match=r"lit-dl doctor: bias_before_norm \(warn\): 1 layer\(s\) with a bias"
    ):
        fit(BiasBeforeBNClassifier(in_features=16, num_classes=3), tmp_path, callback)
    statuses = {f.check: f.status for f in callback.findings}
    assert statuses["bias_before_norm"] == "warn" and statuses["softmax_head"] == "ok"


def test_healthy_model_is_silent(tmp_path, recwarn):
    callback = DoctorCallback()
    fit(MLPClassifier(num_classes=3, in_features=16, hidden_sizes=[16]), tmp_path, callback)
    assert not [w for w in recwarn if "lit-dl doctor" in str(w.message)]
    assert {f.status for f in callback.findings} <= {"ok", "skip"}
