"""The README's way to add a metric: a torchmetrics object in `eval_metrics[stage]` is logged per stage."""

from __future__ import annotations

from typing import Any

import lightning as L
from torchmetrics.classification import MulticlassAUROC

from lit_dl.data import SyntheticClassificationDataModule
from lit_dl.models import MLPClassifier


class WithAUROC(MLPClassifier):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for metrics in self.eval_metrics.values():
            metrics.add_metrics({"auroc": MulticlassAUROC(self.num_classes)})


def test_a_metric_added_to_eval_metrics_is_logged_for_val_and_test(tmp_path):
    data = SyntheticClassificationDataModule(num_classes=3, num_features=8, num_train=32, batch_size=16)
    model = WithAUROC(in_features=8, hidden_sizes=[8], num_classes=3)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (val,) = trainer.validate(model, datamodule=data, verbose=False)
    (test,) = trainer.test(model, datamodule=data, verbose=False)
    assert 0.0 <= val["val/auroc"] <= 1.0 and 0.0 <= test["test/auroc"] <= 1.0
    assert set(val) == {"val/loss", "val/acc", "val/f1", "val/auroc"}
