"""PredictionWriter on one process: rows back in dataset order, the predicted class, the index."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_dl.callbacks import PredictionWriter
from lit_dl.models import MLPClassifier


def predict(tmp_path, loaders, **writer_kwargs):
    torch.manual_seed(0)
    model = MLPClassifier(num_classes=3, in_features=4, hidden_sizes=[8])
    writer = PredictionWriter(output_dir=str(tmp_path), **writer_kwargs)
    trainer = L.Trainer(
        default_root_dir=tmp_path, logger=False, callbacks=[writer], enable_progress_bar=False
    )
    assert trainer.predict(model, dataloaders=loaders, return_predictions=False) is None
    return model.eval(), writer


def test_rows_are_written_in_dataset_order_whatever_order_the_loader_reads(tmp_path):
    x = torch.randn(11, 4)
    loader = DataLoader(TensorDataset(x, torch.zeros(11).long()), batch_size=4, sampler=range(10, -1, -1))
    model, writer = predict(tmp_path, loader)
    assert writer.paths == [tmp_path / "predictions.pt"]
    saved = torch.load(tmp_path / "predictions.pt")
    assert sorted(saved) == ["index", "predicted_class", "probabilities"]
    assert torch.equal(saved["index"], torch.arange(11))
    with torch.no_grad():
        expected = torch.softmax(model(x), -1)
    assert torch.allclose(saved["probabilities"], expected, atol=1e-6)
    assert torch.equal(saved["predicted_class"], saved["probabilities"].argmax(1))


def test_several_predict_loaders_get_one_file_each(tmp_path):
    loaders = [DataLoader(TensorDataset(torch.randn(n, 4)), batch_size=3) for n in (5, 7)]
    predict(tmp_path, loaders, filename="out.pt")
    assert [torch.load(tmp_path / f"out_{k}.pt")["index"].numel() for k in (0, 1)] == [5, 7]


def test_outputs_that_are_not_tensors_are_refused(tmp_path):
    class DictOutputs(MLPClassifier):
        def predict_step(self, batch, batch_idx, dataloader_idx=0):
            return {"probs": super().predict_step(batch, batch_idx)}

    model = DictOutputs(num_classes=3, in_features=4, hidden_sizes=[8])
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, callbacks=[PredictionWriter()])
    with pytest.raises(TypeError, match="tensor outputs of predict_step, got dict"):
        trainer.predict(model, dataloaders=DataLoader(TensorDataset(torch.randn(5, 4)), batch_size=2))
